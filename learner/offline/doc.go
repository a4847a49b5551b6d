// Package offline measures recommenders the way the literature does: split
// a dataset once into a training and a test part, train each model on the
// training part, and rank for every test user.
//
// # Protocols
//
//   - LeaveLastOut: each user's last positive (by time) is the test item;
//     every other event of the user, and of everybody else, trains. The
//     whole catalogue minus the user's training items is ranked.
//   - TimeSplit: the last TestFrac of the events by time is the test part;
//     a user is tested on their positives there on items new to them, so
//     the models face the future the way a deployed model does.
//   - Sampled: as LeaveLastOut, but the test item is ranked against
//     Negatives items the user never touched, drawn uniformly with the
//     seed (He et al., "Neural Collaborative Filtering", 2017). Sampled
//     metrics are not full-ranking metrics — Krichene and Rendle (2020)
//     show they can even reorder models — so Eddy reports both.
//
// A user with a test item but no training event left is skipped and
// counted (SkippedUsers): no model can know them.
//
// # Metrics
//
// HR@K is the share of test users with a test item in their top K; NDCG@K
// the discounted gain of the hits over the ideal one; Recall@K the share
// of each user's test items in the top K, averaged over users; coverage
// the share of items with training data that appear in some top-K list. A
// test item's position counts every other eligible item scoring at least
// as high, so ties count against it: a model that scores everything alike
// earns nothing instead of a lucky draw.
//
// # Choosing hyperparameters
//
// Sweep never looks at the test part: it applies the same protocol again
// to the training part, trains each grid point on what remains, picks the
// best by validation HR@K, and only then trains that point on the whole
// training part and tests it once.
package offline
