#!/usr/bin/env bash
# Batch iALS next to `implicit`: quality on MovieLens (both protocols) and
# train time from 100k to 3M interactions (Globo G1 clicks), in one run,
# plus the 1M-interaction benchmark in both builds and eddy train's peak
# RSS on 3M. Not part of make test (needs pip install implicit and takes a
# few minutes). Usage: bash scripts/bench-ials.sh [../shared/data]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
GOEXPERIMENT=simd go build -o bin/eddy ./cmd/eddy
GOEXPERIMENT= go build -o bin/eddy-portable ./cmd/eddy
threads=$(nproc)
echo "## $(date -u +%F) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3), implicit $(python3 -c 'import implicit; print(implicit.__version__)')"
echo
echo "### quality and speed next to implicit (same matrix, same hyperparameters, ν = 0)"
for proto in leave-last-out sampled; do
  python3 scripts/peer-implicit.py --eddy bin/eddy --dataset "movielens:$data/ml-100k" --protocol $proto --threads "$threads" 2>/dev/null | sed -n '1,6p'
  echo
done
globo="--columns user_id=user_id,item_id=click_article_id,ts=click_timestamp --type click --ts-unit ms"
for glob in 'clicks_hour_0[0-9][0-9].csv.gz' 'clicks_hour_[01][0-9][0-9].csv.gz' '*.csv.gz'; do
  python3 scripts/peer-implicit.py --eddy bin/eddy --dataset "csv:$data/globo-g1-clicks/clicks/$glob" --epochs 15 \
    --max-test-users 5000 --threads "$threads" --extra "$globo" 2>/dev/null | sed -n '1,6p'
  echo
done
echo "### 1M interactions (synthetic Zipf, 150k users × 40k items), d = 64, 15 epochs"
GOEXPERIMENT=simd go test -run '^$' -bench 'Train1M' -benchtime 3x ./learner/ials/ | grep Benchmark
echo
echo "### eddy train on the 3M Globo clicks: peak RSS"
/usr/bin/time -f "max RSS %M KiB, %e s wall" bin/eddy train --dataset "csv:$data/globo-g1-clicks/clicks" $globo \
  --epochs 15 --out /tmp/eddy-bench-ials.snap --log-level warn 2>&1 | tail -3
rm -f /tmp/eddy-bench-ials.snap
