package ssehub_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssehub/ssehub"
)

// Every publisher's events follow the same rules, with errors that say
// what to fix.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   ssehub.Event
		says string // "" for a valid event
	}{
		{"plain", ssehub.Event{Topics: []string{"a"}, Data: "x\ny"}, ""},
		{"publisher id and type", ssehub.Event{Topics: []string{"https://example.com/a"}, ID: "urn:uuid:1", Type: "update"}, ""},
		{"no topic", ssehub.Event{}, "topic is required"},
		{"empty topic", ssehub.Event{Topics: []string{"a", ""}}, "must not be empty"},
		{"wildcard topic", ssehub.Event{Topics: []string{"*"}}, `"*" is reserved`},
		{"control character in topic", ssehub.Event{Topics: []string{"a\x01"}}, "U+0001"},
		{"C1 control character in topic", ssehub.Event{Topics: []string{"a\u0085"}}, "U+0085"},
		{"invalid UTF-8 topic", ssehub.Event{Topics: []string{"a\xff"}}, "not valid UTF-8"},
		{"LF in id", ssehub.Event{Topics: []string{"a"}, ID: "a\nb"}, "id must not contain CR, LF or NUL"},
		{"tab in id", ssehub.Event{Topics: []string{"a"}, ID: "a\tb"}, "control character"},
		// HTTP trims header values: an id with surrounding spaces could
		// never come back as Last-Event-ID to resume from.
		{"leading space in id", ssehub.Event{Topics: []string{"a"}, ID: " urn:1"}, "must not start or end with white space"},
		{"trailing space in id", ssehub.Event{Topics: []string{"a"}, ID: "urn:1 "}, "must not start or end with white space"},
		{"no-break space ending id", ssehub.Event{Topics: []string{"a"}, ID: "urn:1\u00a0"}, "white space"},
		{"inner space in id", ssehub.Event{Topics: []string{"a"}, ID: "urn:a b"}, ""},
		{"digits-only id", ssehub.Event{Topics: []string{"a"}, ID: "123"}, "digits only"},
		{"earliest id", ssehub.Event{Topics: []string{"a"}, ID: ssehub.EarliestID}, "reserved"},
		{"CR in type", ssehub.Event{Topics: []string{"a"}, Type: "a\rb"}, "type must not contain"},
		{"reserved type", ssehub.Event{Topics: []string{"a"}, Type: "ssehub.gap"}, "reserved for the hub"},
		{"reserved type of a protocol layer's event", ssehub.Event{Topics: []string{"a"}, Type: "ssehub.stream.closed", Meta: "{}"}, ""},
		{"invalid UTF-8 data", ssehub.Event{Topics: []string{"a"}, Data: "\xff"}, "data is not valid UTF-8"},
		{"negative retry", ssehub.Event{Topics: []string{"a"}, Retry: -1}, "retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.Validate()
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.says != "" && (!errors.Is(err, ssehub.ErrInvalid) || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("Validate = %v, want ErrInvalid saying %q", err, tc.says)
			}
		})
	}
	if err := (&ssehub.Event{Topics: []string{"a"}, Type: "ssehub.x"}).Validate(); !errors.Is(err, ssehub.ErrReservedType) {
		t.Fatalf("reserved type: %v, want ErrReservedType", err)
	}
}
