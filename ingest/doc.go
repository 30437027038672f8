// Package ingest is the transport-neutral entry of messages: Accept
// parses, checks, stores through a store.Committer and decides the ACK
// (positive only once stored). Sources call it: the MLLP listener today
// (Ingest is its mllp.Handler), files and HTTP next.
package ingest
