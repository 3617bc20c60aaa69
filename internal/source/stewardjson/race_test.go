//go:build race

package stewardjson_test

// raceEnabled shrinks the streaming test: the race detector slows parsing ~10x.
const raceEnabled = true
