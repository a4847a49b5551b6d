// Package trainset turns a stream of events — from the archive, an import
// source or a generator — into the interactions the batch trainer learns
// from, with the same rules the online path applies:
//
//   - an event_id counts once: a repeated id (an at-least-once resend, or
//     history imported twice) is dropped, across the whole set rather
//     than the online path's one-hour window, because a batch sees it all;
//   - user and item ids are the events' strings, interned in order of
//     first appearance (learner.Catalog), so the trained rows map back to
//     the keys of the model topics;
//   - each event's label and weight come from learner.Confidence, the
//     weights the online MF uses (type, watch ratio, rating).
//
// A Set is time-ordered, so evaluation splits can cut it by time or take
// each user's last positive; Matrix builds the ials.Matrix of any subset.
// Event ids are remembered as 64-bit FNV-1a hashes (16 bytes an event
// instead of the id's length), which makes two distinct ids colliding in a
// set of 10 million events a chance of about 3·10⁻⁶.
package trainset
