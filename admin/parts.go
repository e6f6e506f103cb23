package admin

import "bytes"

// partSize is about how much output a listing gathers before it hands
// it on: whole lines, so that each part is printable text on its own.
const partSize = 64 << 10

// output is where a listing writes: into memory, or, when the command was
// given a part function (DoTo), on to it a part at a time.
type output struct {
	part func(string) error
	buf  bytes.Buffer
	err  error // the first from part
}

func (s *Service) output() *output { return &output{part: s.part} }

func (o *output) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	o.buf.Write(p)
	if o.part != nil && o.buf.Len() >= partSize {
		if end := bytes.LastIndexByte(o.buf.Bytes(), '\n'); end >= 0 {
			if o.err = o.part(printableText(string(o.buf.Next(end + 1)))); o.err != nil {
				return 0, o.err
			}
		}
	}
	return len(p), nil
}

// rest is what has not been handed on.
func (o *output) rest() string { return o.buf.String() }
