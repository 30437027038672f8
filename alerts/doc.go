// Package alerts owns alert rules, their evaluation and state, and the
// notifiers (webhook, email) that tell people when a rule fires, repeats
// and resolves. It reads facts the broker gathers (times, counts, names);
// it never sees a message's content, so no notification can carry one.
package alerts
