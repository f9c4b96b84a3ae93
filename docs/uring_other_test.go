//go:build !linux

package docs

import "errors"

func uringMissing() error { return errors.New("io_uring is Linux's") }
