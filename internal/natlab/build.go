package natlab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildPeerdrop builds the peerdrop command into a new temporary directory
// (with -race when race is set), for tests that run it as separate
// processes; remove the directory when done.
func BuildPeerdrop(race bool) (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "peerdrop-bin-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "peerdrop")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/peerdrop/peerdrop/cmd/peerdrop")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return bin, dir, nil
}

// PartialSize is the size of the partial file (".part") a receiver keeps
// in dir, or -1 when there is none.
func PartialSize(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			if fi, err := e.Info(); err == nil {
				return fi.Size()
			}
		}
	}
	return -1
}
