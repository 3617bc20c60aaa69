//go:build !race

package sarif_test

const raceEnabled = false
