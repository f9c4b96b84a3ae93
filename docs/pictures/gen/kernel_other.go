//go:build !unix

package main

// kernelRelease is "" where there is no uname(2): the machine line then names
// the system alone (the pictures are drawn on Unix; this lets gen build and
// vet everywhere, as make cross asks).
func kernelRelease() string { return "" }
