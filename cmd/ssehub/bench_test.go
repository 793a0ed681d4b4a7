package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBenchStormFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"behind without storm", []string{"--storm-behind", "1000"}, "--storm"},
		{"more topics than clients", []string{"--storm", "2", "--storm-topics", "3"}, "at most 2"},
		{"storm and resume", []string{"--storm", "2", "--resume-missed", "10"}, "not both"},
		{"storm on all topics", []string{"--storm", "2", "--all"}, "exact topics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--url", "http://127.0.0.1:1/.well-known/mercure"}, tc.args...)
			if code := runBench(context.Background(), args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.want)
			}
		})
	}
	var out, errOut bytes.Buffer
	runBench(context.Background(), []string{"-h"}, &out, &errOut)
	for _, f := range []string{"-storm-behind", "-reconnect-max-backoff", "Reconnect storm"} {
		if !strings.Contains(out.String(), f) { // -h goes to standard output
			t.Errorf("help lacks %q", f)
		}
	}
}
