// Package park holds idle HTTP/1.x event streams without a goroutine or
// buffers of their own, so that a hub can keep tens of thousands of mostly
// idle subscribers in little memory.
//
// net/http serves each connection with a goroutine and read and write
// buffers: about 30 KB for a stream that mostly waits. Once a stream's
// headers and replay are written, Park takes the connection over
// (http.Hijacker): one goroutine watches every parked connection with
// epoll for clients that leave, and a few writer goroutines write events
// when there are some, with non-blocking writev. A write that does not
// finish waits for EPOLLOUT instead of blocking a writer; a stream stalled
// longer than the write timeout is closed (the client resumes from
// history). HTTP/2 streams cannot be hijacked and stay on the normal path.
//
// Park is Linux-only; elsewhere it always declines and handlers keep
// serving streams themselves.
package park
