package eventlog

import "github.com/ssehub/ssehub"

// DuplicateID returns an ID (publisher-supplied, not empty) that two events
// of events share, and whether there is one. Logs implementing
// ssehub.IDIndex use it to refuse such batches. Safe for concurrent use.
func DuplicateID(events []*ssehub.Event) (string, bool) {
	if len(events) < 2 {
		return "", false
	}
	if len(events) <= 16 {
		for i, e := range events {
			if e.ID == "" {
				continue
			}
			for _, prev := range events[:i] {
				if prev.ID == e.ID {
					return e.ID, true
				}
			}
		}
		return "", false
	}
	seen := make(map[string]struct{}, len(events))
	for _, e := range events {
		if e.ID == "" {
			continue
		}
		if _, dup := seen[e.ID]; dup {
			return e.ID, true
		}
		seen[e.ID] = struct{}{}
	}
	return "", false
}
