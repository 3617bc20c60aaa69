// Package sample bundles real scanner findings into the binary for the
// quick start and the demo. See data/README.md for where each file came from.
package sample

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed data/*.ocsf.json
var files embed.FS

// File is one bundled findings file.
type File struct {
	Name string
	Data []byte
}

// Files returns the bundled findings files, sorted by name.
func Files() []File {
	entries, _ := fs.Glob(files, "data/*.ocsf.json") // the pattern is constant and valid
	sort.Strings(entries)
	out := make([]File, 0, len(entries))
	for _, name := range entries {
		b, _ := files.ReadFile(name) // embedded: cannot fail
		out = append(out, File{Name: name[len("data/"):], Data: b})
	}
	return out
}
