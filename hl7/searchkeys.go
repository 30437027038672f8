package hl7

import "fmt"

// SearchKeyPaths parses named search keys (name -> HL7 path, as in
// history.search_keys: {mrn: PID-3.1}).
func SearchKeyPaths(keys map[string]string) (map[string]Path, error) {
	paths := make(map[string]Path, len(keys))
	for name, p := range keys {
		path, err := ParsePath(p)
		if err != nil {
			return nil, fmt.Errorf("search key %s: %w", name, err)
		}
		paths[name] = path
	}
	return paths, nil
}

// SearchKeyValues reads m's search keys: every non-empty repetition (PID-3
// often holds an MRN and more). Nil when there are none.
func SearchKeyValues(m *Message, paths map[string]Path) map[string][]string {
	var out map[string][]string
	for name, path := range paths {
		for _, v := range m.Values(path) {
			if len(v) == 0 {
				continue
			}
			if out == nil {
				out = map[string][]string{}
			}
			out[name] = append(out[name], string(v))
		}
	}
	return out
}
