package admin

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/hl7broker/hl7broker/history"
)

// reconcileRequest is POST /api/v1/reconcile's body: the messages of a
// migration to account for, each by its control ID and the SHA-256 of
// its bytes (hl7broker import --reconcile sends them).
type reconcileRequest struct {
	Messages []history.Match `json:"messages"`
}

// reconcile answers what the broker did with each message asked about:
// the messages stored with those bytes, their copies' statuses and the
// SHA-256 of what each destination received; or the latest refusal of
// its control ID; and how far the index has applied the streams, and how
// far they go (a message not found, or an outcome, may be newer). Ids,
// statuses, codes and digests: no content. Audited like a search
// (message.reconcile, with the ids found).
func (a *API) reconcile(w http.ResponseWriter, r *http.Request, u user) {
	if a.noHistory(w) {
		return
	}
	var req reconcileRequest
	err := decode(r, &req)
	if err == nil && len(req.Messages) > history.MaxImported {
		err = bad("at most %d messages a request", history.MaxImported)
	}
	var found []history.Imported
	var indexed, streams map[string]uint64
	if err == nil {
		// Progress first: what is found after it is at least as new.
		if indexed, streams, err = a.Ops.IndexProgress(r.Context()); err == nil {
			found, err = a.Ops.Index.Imported(r.Context(), req.Messages, u.Sources)
		}
	}
	if errors.Is(err, history.ErrBadRequest) {
		err = bad("%s", err.Error())
	}
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	var ids []string
	for _, f := range found {
		for _, m := range f.Messages {
			ids = append(ids, strconv.FormatUint(m.ID, 10))
		}
	}
	if !a.mustRecord(w, r, u.Name, "message.reconcile", ids, strconv.Itoa(len(req.Messages))+" messages asked about") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": found, "indexed": indexed, "streams": streams})
}
