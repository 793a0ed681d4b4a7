// Package web serves ssehub's browser side: the dashboard (live numbers and a
// chart from the hub's stats stream, a publish form, a live event log), a
// page that reads one Durable Stream (/streams.html?stream=/v1/stream/…:
// its text as it arrives, resumed from the last offset after a reload) and
// the JavaScript helper /ssehub.js, all embedded in the binary with no build
// step.
//
// Handler serves the files at the root of whatever it is mounted on; the
// pages use relative URLs, so it works under a prefix too:
//
//	mux.Handle("/", web.Handler())
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", web.Handler()))
//
// The dashboard talks to the hub at its origin's /.well-known/mercure and
// /.well-known/ssehub/stats (well-known URIs live at the root of an origin);
// the stream page reads the path it is given on its own origin.
//
// The helper's source is web/js/ssehub.js, which is also the npm-style
// package "ssehub" (see web/js/README.md); the same file is embedded here.
package web
