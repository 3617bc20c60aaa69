package ingest

// SetChunkSize lets tests exercise several chunks with small files.
func SetChunkSize(in *Ingester, n int) { in.chunkSize = n }
