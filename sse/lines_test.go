package sse

import (
	"reflect"
	"testing"
	"time"
)

// TestLineSplitter splits each input fed in two reads, cut at every
// position, and whole: the lines are the same, also when a CRLF is cut in
// two, and an unfinished last line is not returned.
func TestLineSplitter(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"LF", "a\nbc\n\n", []string{"a", "bc", ""}},
		{"CR", "a\rbc\r\r", []string{"a", "bc", ""}},
		{"CRLF", "a\r\nbc\r\n\r\n", []string{"a", "bc", ""}},
		{"LF CR is two ends", "a\n\rb\n", []string{"a", "", "b"}},
		{"mixed", "data: x\r\n\rid: 1\n\r\n", []string{"data: x", "", "id: 1", ""}},
		{"unfinished last line", "a\nb", []string{"a"}},
		{"CR at the very end", "a\r", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for cut := 0; cut <= len(tc.in); cut++ {
				var s LineSplitter
				var got []string
				buf := []byte(tc.in[:cut])
				split := func() {
					for {
						line, n, ok := s.Next(buf)
						buf = buf[n:]
						if !ok {
							return
						}
						got = append(got, string(line))
					}
				}
				split()
				buf = append(buf, tc.in[cut:]...)
				split()
				if !reflect.DeepEqual(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Fatalf("cut at %d: lines %q, want %q", cut, got, tc.want)
				}
			}
		})
	}
}

func TestField(t *testing.T) {
	for _, tc := range []struct{ line, name, value string }{
		{"data: a", "data", "a"},
		{"data:a", "data", "a"},
		{"data:  a", "data", " a"},
		{"data: a: b", "data", "a: b"},
		{"data", "data", ""},
		{"data:", "data", ""},
	} {
		name, value := Field([]byte(tc.line))
		if string(name) != tc.name || string(value) != tc.value {
			t.Errorf("Field(%q) = %q, %q; want %q, %q", tc.line, name, value, tc.name, tc.value)
		}
	}
}

func TestParseRetry(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"1500", 1500 * time.Millisecond, true},
		{"0", 0, true},
		{"", 0, false},
		{" 1", 0, false},
		{"1.5", 0, false},
		{"-1", 0, false},
		{"9223372036854", 9223372036854 * time.Millisecond, true},
		{"9223372036855", 0, false}, // too large for a time.Duration
	} {
		if got, ok := ParseRetry([]byte(tc.v)); got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetry(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
