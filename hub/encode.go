package hub

import (
	"github.com/ssehub/ssehub"
	"github.com/ssehub/ssehub/sse"
)

// appendEvent appends ev's wire bytes to dst.
func appendEvent(dst []byte, ev *ssehub.Event) ([]byte, error) {
	return sse.AppendEvent(dst, sse.Event{ID: ev.WireID(), Type: ev.Type, Data: ev.Data, Retry: ev.Retry})
}

// encodedSizeHint is a close upper estimate of ev's wire size, so a batch
// is encoded with one allocation.
func encodedSizeHint(ev *ssehub.Event) int {
	return 48 + len(ev.ID) + len(ev.Type) + len(ev.Data) + len(ev.Data)/16
}
