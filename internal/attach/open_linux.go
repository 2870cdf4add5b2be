package attach

import (
	"errors"
	"os"
	"syscall"
)

// openRead opens name for reading without updating its access time, so a
// download or a resume leaves no time on disk (see # Privacy), and without
// following a symbolic link. O_NOATIME needs the file's owner; anyone else
// falls back to an open that may set the access time.
func openRead(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	return f, err
}
