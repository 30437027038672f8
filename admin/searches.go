package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hl7broker/hl7broker/wire"
)

// SearchStore keeps each person's saved searches where every broker sees
// them (the broker gives HL7_STATE).
type SearchStore interface {
	SavedSearches(ctx context.Context, user string) ([]wire.SavedSearch, error)
	UpdateSavedSearches(ctx context.Context, user string, change func([]wire.SavedSearch) ([]wire.SavedSearch, error)) error
}

// maxSavedSearches bounds one person's saved searches.
const maxSavedSearches = 50

// searchParams are what a saved search may hold: the filters of GET
// /api/v1/messages (and key.<name>).
var searchParams = []string{"control_id", "text", "type", "event", "listener", "status", "destination", "from", "to", "limit"}

// checkSavedQuery says why query is not a search of messages, or "".
func checkSavedQuery(query string) string {
	if len(query) > 2000 {
		return "a saved search's query is at most 2,000 characters"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "the query does not parse: " + err.Error()
	}
	for k := range q {
		if !slices.Contains(searchParams, k) && !strings.HasPrefix(k, "key.") {
			return "a saved search holds the filters of GET /api/v1/messages; " + k + " is not one"
		}
	}
	return ""
}

func (a *API) listSearches(w http.ResponseWriter, r *http.Request, u user) {
	if a.Searches == nil {
		writeError(w, http.StatusServiceUnavailable, "saved searches need the store")
		return
	}
	list, err := a.Searches.SavedSearches(r.Context(), u.Name)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the saved searches could not be read: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string][]wire.SavedSearch{"items": list})
}

// errSearchLimit: a person has as many saved searches as they may.
var errSearchLimit = errors.New("you have 50 saved searches: delete one first")

func (a *API) saveSearch(w http.ResponseWriter, r *http.Request, u user) {
	name := strings.TrimSpace(r.PathValue("name"))
	var req struct {
		Query string `json:"query"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case a.Searches == nil:
		writeError(w, http.StatusServiceUnavailable, "saved searches need the store")
		return
	case name == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name):
		writeError(w, http.StatusBadRequest, "a saved search's name is 1 to 64 characters")
		return
	}
	if why := checkSavedQuery(req.Query); why != "" {
		writeError(w, http.StatusBadRequest, why)
		return
	}
	err := a.Searches.UpdateSavedSearches(r.Context(), u.Name, func(list []wire.SavedSearch) ([]wire.SavedSearch, error) {
		s := wire.SavedSearch{Name: name, Query: req.Query, SavedAt: time.Now().UTC()}
		if i := slices.IndexFunc(list, func(x wire.SavedSearch) bool { return x.Name == name }); i >= 0 {
			list[i] = s
			return list, nil
		}
		if len(list) >= maxSavedSearches {
			return nil, errSearchLimit
		}
		return append(list, s), nil
	})
	switch {
	case errors.Is(err, errSearchLimit):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "the search could not be saved: "+err.Error())
	default:
		a.record(r, u.Name, "search.save", "ok", nil, name)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) deleteSearch(w http.ResponseWriter, r *http.Request, u user) {
	name := r.PathValue("name")
	if a.Searches == nil {
		writeError(w, http.StatusServiceUnavailable, "saved searches need the store")
		return
	}
	found := false
	err := a.Searches.UpdateSavedSearches(r.Context(), u.Name, func(list []wire.SavedSearch) ([]wire.SavedSearch, error) {
		n := len(list)
		list = slices.DeleteFunc(list, func(x wire.SavedSearch) bool { return x.Name == name })
		found = len(list) < n
		return list, nil
	})
	switch {
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "the search could not be deleted: "+err.Error())
	case !found:
		writeError(w, http.StatusNotFound, "you have no saved search of that name")
	default:
		a.record(r, u.Name, "search.delete", "ok", nil, name)
		w.WriteHeader(http.StatusNoContent)
	}
}
