module blocking-to-epoll

go 1.24.0

require (
	github.com/google/go-cmp v0.7.0
	// x/sys stays at v0.41.0, the newest whose go.mod allows Go 1.24 ("go 1.24.0"):
	// v0.42.0 and later say "go 1.25.0", which would make this module need Go 1.25.
	golang.org/x/sys v0.41.0
)
