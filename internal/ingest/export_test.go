package ingest

import (
	"context"
	"time"
)

// SetChunkSize lets tests exercise several chunks with small files.
func SetChunkSize(in *Ingester, n int) { in.chunkSize = n }

// SetAfterChunk makes fn run in an import's transaction after each chunk
// is applied (and its progress reported), with the records applied so
// far: a test holds an import there, or fails it as a crash would.
func SetAfterChunk(in *Ingester, fn func(ctx context.Context, records int) error) { in.afterChunk = fn }

// SetProgressEvery sets how often progress is written to the database
// (PostgreSQL); 0 writes every report.
func SetProgressEvery(in *Ingester, d time.Duration) { in.progressEvery = d }
