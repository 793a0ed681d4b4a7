package logtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/ssehub"
)

// Outage describes an engine whose server the test owns, for TailOutage.
type Outage struct {
	// Tailer and Appender are two logs on the same history, as on two
	// nodes; Tailer logs to Logs.
	Tailer, Appender ssehub.Log
	Logs             fmt.Stringer
	// Kill ends the server; Restart starts it again and returns once the
	// Appender can append.
	Kill, Restart func()
	// Down is what Tailer logs when it loses the server (Tailer logs
	// "reachable again" when it is back).
	Down string
}

// TailOutage kills and restarts the server while a Tail runs: Tail keeps
// running, logs the outage, and after the restart delivers what was
// appended, with no gap and no duplicate.
func TailOutage(t *testing.T, o Outage) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tailer's log:\n%s", o.Logs)
		}
	})
	tl := StartTail(t, o.Tailer, 0, 15*time.Second)
	var got []*ssehub.Event
	appendAndReceive := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := o.Appender.Append(t.Context(), &ssehub.Event{Topics: []string{"a"}, Data: fmt.Sprint(i)}); err != nil {
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		got = append(got, tl.Next(t, n)...)
	}
	logged := func(what, text string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(o.Logs.String(), text) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for the tail to report %s (%q)", what, text)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	appendAndReceive(0, 5)
	o.Kill()
	logged("the outage", o.Down)
	tl.Running(t) // it waits for the server
	o.Restart()
	appendAndReceive(5, 5)
	logged("recovery", "reachable again")
	appendAndReceive(10, 1)
	tl.Cancel()
	if err := tl.Wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Tail returned %v", err)
	}
	for i, e := range got { // Next checked that positions only increase
		if e.Data != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: gap or duplicate around the outage", i, e.Data)
		}
	}
}
