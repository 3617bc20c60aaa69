//go:build !race

package stewardjson_test

const raceEnabled = false
