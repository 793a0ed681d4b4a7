package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// benchRefuses checks that bench refuses each case's flags (after
// common) with exit code 2 and a message containing want.
func benchRefuses(t *testing.T, common []string, cases []struct {
	name, want string
	args       []string
}) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append(append([]string(nil), common...), tc.args...)
			if code := runBench(context.Background(), args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.want)
			}
		})
	}
}

func TestBenchStormFlags(t *testing.T) {
	benchRefuses(t, []string{"--url", "http://127.0.0.1:1/.well-known/mercure"}, []struct {
		name, want string
		args       []string
	}{
		{"behind without storm", "--storm", []string{"--storm-behind", "1000"}},
		{"more topics than clients", "at most 2", []string{"--storm", "2", "--storm-topics", "3"}},
		{"storm and resume", "not both", []string{"--storm", "2", "--resume-missed", "10"}},
		{"storm on all topics", "exact topics", []string{"--storm", "2", "--all"}},
	})
	var out, errOut bytes.Buffer
	runBench(context.Background(), []string{"-h"}, &out, &errOut)
	for _, f := range []string{"-storm-behind", "-reconnect-max-backoff", "Reconnect storm"} {
		if !strings.Contains(out.String(), f) { // -h goes to standard output
			t.Errorf("help lacks %q", f)
		}
	}
}

func TestBenchDurableStreamsFlags(t *testing.T) {
	benchRefuses(t, []string{"--mode", "durable-streams"}, []struct {
		name, want string
		args       []string
	}{
		{"all", "one stream", []string{"--all"}},
		{"publish URL", "publish URL", []string{"--publish-url", "http://127.0.0.1:1/p"}},
		{"storm", "Last-Event-ID", []string{"--storm", "2"}},
	})
	// One reader per stream by default; nothing listens on port 1, so the
	// streams cannot be created and the run stops there.
	var out, errOut bytes.Buffer
	args := []string{"--mode", "durable-streams", "--url", "http://127.0.0.1:1/v1/stream/", "--topics", "3", "--progress", "0"}
	if code := runBench(context.Background(), args, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, errOut.String())
	}
	if !strings.Contains(out.String(), "3 streams, 3 SSE readers") || !strings.Contains(errOut.String(), "creating the streams: 3 of 3") {
		t.Errorf("stdout %q\nstderr %q", out.String(), errOut.String())
	}
	out.Reset()
	runBench(context.Background(), []string{"-h"}, &out, &errOut)
	if !strings.Contains(out.String(), "--mode durable-streams") {
		t.Errorf("help lacks the durable-streams example")
	}
}
