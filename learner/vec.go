package learner

// dot returns a·b over len(a) components; b must be at least as long.
// Four accumulators break the add dependency chain so the loop runs at the
// CPU's FMA throughput rather than its latency.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// gradStep is the fused inner loop of one example: du += g·v (the user's
// gradient) and gv = g·u (the item's), in one pass over the vectors.
func gradStep(g float32, u, v, du, gv []float32) {
	n := len(u)
	v, du, gv = v[:n], du[:n], gv[:n]
	j := 0
	for ; j+4 <= n; j += 4 {
		du[j] += g * v[j]
		du[j+1] += g * v[j+1]
		du[j+2] += g * v[j+2]
		du[j+3] += g * v[j+3]
		gv[j] = g * u[j]
		gv[j+1] = g * u[j+1]
		gv[j+2] = g * u[j+2]
		gv[j+3] = g * u[j+3]
	}
	for ; j < n; j++ {
		du[j] += g * v[j]
		gv[j] = g * u[j]
	}
}

// shrinkAdd sets x = shrink·x + lr·d: an SGD step with L2 weight decay.
func shrinkAdd(shrink, lr float32, d, x []float32) {
	d = d[:len(x)]
	j := 0
	for ; j+4 <= len(x); j += 4 {
		x[j] = shrink*x[j] + lr*d[j]
		x[j+1] = shrink*x[j+1] + lr*d[j+1]
		x[j+2] = shrink*x[j+2] + lr*d[j+2]
		x[j+3] = shrink*x[j+3] + lr*d[j+3]
	}
	for ; j < len(x); j++ {
		x[j] = shrink*x[j] + lr*d[j]
	}
}
