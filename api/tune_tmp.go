package api

import (
	"os"
	"strconv"
)

// TEMPORARY (tuning runs): an int from the environment.
func tuneInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
