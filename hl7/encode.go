package hl7

// AppendTerminated appends the message to dst with every segment ended by
// term ("\r" for MLLP) and blank lines dropped. Segment bytes are copied
// as they are. Use Bytes to forward a message exactly as received.
func (m *Message) AppendTerminated(dst []byte, term string) []byte {
	for _, s := range m.segs {
		dst = append(dst, m.buf[s.start:s.end]...)
		dst = append(dst, term...)
	}
	return dst
}
