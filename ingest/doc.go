// Package ingest is the transport-neutral entry of messages: Accept
// parses, checks, stores through a store.Committer and decides the ACK
// (positive only once stored). Sources call it: the MLLP listener (Ingest
// is its mllp.Handler), the file source (FileSource) and the HTTP source
// (HTTPSource).
package ingest
