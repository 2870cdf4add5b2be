//go:build !linux

package attach

import "os"

// openRead opens name for reading. Only Linux can leave the access time
// alone (O_NOATIME); elsewhere mount the directory noatime.
func openRead(name string) (*os.File, error) { return os.Open(name) }
