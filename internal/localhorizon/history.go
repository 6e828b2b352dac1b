package localhorizon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// accountTransactions serves GET /accounts/{id}/transactions the way Horizon pages it: the
// account's transactions in ledger order (order=asc|desc), limit (default 10, at most 200),
// and cursor = a record's paging_token.
func (s *Server) accountTransactions(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			problem(w, http.StatusBadRequest, "bad_request", "Bad Request", map[string]any{"invalid_field": "limit"})
			return
		}
		limit = n
	}
	desc := q.Get("order") == "desc"
	cursor := 0
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problem(w, http.StatusBadRequest, "bad_request", "Bad Request", map[string]any{"invalid_field": "cursor"})
			return
		}
		cursor = n
	}
	s.mu.Lock()
	_, known := s.accounts[id]
	records := []map[string]any{}
	for i := range s.log {
		pos := i // 0-based position in ledger order; paging tokens are pos+1
		if desc {
			pos = len(s.log) - 1 - i
		}
		token := pos + 1
		if cursor != 0 && ((!desc && token <= cursor) || (desc && token >= cursor)) {
			continue
		}
		rec := s.txs[s.log[pos]]
		if rec.Source != id {
			continue
		}
		j := s.txJSON(rec)
		j["paging_token"] = strconv.Itoa(token)
		records = append(records, j)
		if len(records) == limit {
			break
		}
	}
	s.mu.Unlock()
	if !known {
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
		return
	}
	w.Header().Set("Content-Type", "application/hal+json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"_links":    map[string]any{"self": map[string]string{"href": r.URL.String()}},
		"_embedded": map[string]any{"records": records},
	})
}

// accountSubpath splits "/accounts/{id}/transactions" into the id; ok is false otherwise.
func accountSubpath(path string) (id string, ok bool) {
	rest, found := strings.CutPrefix(path, "/accounts/")
	if !found {
		return "", false
	}
	id, ok = strings.CutSuffix(rest, "/transactions")
	return id, ok && id != "" && !strings.Contains(id, "/")
}
