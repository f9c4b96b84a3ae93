# Every command a reader needs. `make` alone lists them.

SHELL := /bin/bash
STAGES := $(sort $(wildcard [0-9][0-9]-*))
ARGS ?=
ADDR ?= 127.0.0.1:8000
# A count, not a duration: with -fuzztime as a duration, Go 1.26's fuzzing
# coordinator can end a good run with "context deadline exceeded" (golang/go#75804).
FUZZTIME ?= 20000x
EX ?=
FROM ?= 01
TO ?= 02
# v0.6.1 (2025.1.1) is the newest staticcheck whose go.mod allows Go 1.24 (go 1.23);
# v0.7.0 needs Go 1.25 and v0.8 Go 1.26. It is clean here on Go 1.24 and on 1.26.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
# What make diff leaves out: the same in every stage, or for other systems.
DIFF_LEFT_OUT := scaffold*.go windows.go kqueue*.go other.go
# checksums FIND-TESTS: one line per file found, so that a target can say
# afterwards which files it rewrote.
checksums = find . -path ./.git -prune -o -type f \( $(1) \) -print0 | sort -z | xargs -0 cksum
# rewritten: compares $$before (checksums taken before) with the files now.
rewritten = changed=$$(diff <(echo "$$before") <($(call checksums,$(1))) | sed -n 's|^> [0-9]* [0-9]* \./|  |p'); \
	if [ -n "$$changed" ]; then echo "rewrote:"; echo "$$changed"; else echo "rewrote nothing: every file was already as it came out"; fi

.PHONY: help run test lint diff check check-solutions compare curve pictures fuzz docs sync-scaffold cross server

help: ## list the commands (this)
	@grep -hE '^[a-z0-9%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

run: ## run every stage in order against the embedded test server (ARGS="-n 8" passes flags)
	@for stage in $(STAGES); do \
		echo "════════ $$stage ════════"; \
		go run ./$$stage $(ARGS) || exit $$?; \
		echo; \
	done

run-%: ## run one stage: make run-01 ARGS="-trace -n 2"
	@dir=$$(ls -d $*-*/ 2>/dev/null | head -1); \
	if [ -z "$$dir" ]; then echo "no stage $*; the stages are: $(STAGES)"; exit 2; fi; \
	echo "go run ./$${dir%/} $(ARGS)"; go run ./$${dir%/} $(ARGS)

test: ## run every test, with the race detector (without it, saying so, when there is no cgo or C compiler)
	@cc=$$(go env CC); if [ "$$(go env CGO_ENABLED)" = 1 ] && command -v $${cc%% *} >/dev/null 2>&1; then \
		echo "go test -race ./..."; go test -race ./...; \
	else \
		echo "the race detector needs cgo and a C compiler, and here CGO_ENABLED=$$(go env CGO_ENABLED), CC=$${cc:-none}$$(command -v $${cc%% *} >/dev/null 2>&1 || echo ' (not found)'): running go test ./... without -race"; \
		CGO_ENABLED=0 go test ./...; \
	fi

lint: ## gofmt, go vet and staticcheck must have nothing to say
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go vet -tags exercises ./docs/exercises/...
	go run $(STATICCHECK) ./...
	go run $(STATICCHECK) -tags exercises ./docs/exercises/...

diff: ## what stage TO changes from stage FROM: make diff FROM=01 TO=02
	@from=$$(ls -d $(FROM)-*/ 2>/dev/null | head -1); to=$$(ls -d $(TO)-*/ 2>/dev/null | head -1); \
	missing=$$([ -n "$$from" ] || echo "FROM=$(FROM)"; [ -n "$$to" ] || [ "$(TO)" = "$(FROM)" ] || echo "TO=$(TO)"); \
	if [ -n "$$missing" ]; then echo "no such stage: $$(echo $$missing | sed 's/ / or /'); the stages are: $(STAGES)"; exit 2; fi; \
	diff -ruN $(foreach x,$(DIFF_LEFT_OUT),-x '$(x)') -x '[0-9][0-9]-*' $${from%/} $${to%/}; \
	echo "── $${from%/} → $${to%/}, lines added or removed (left out: scaffold*.go, identical in every stage; windows.go, the same stand-in in every stage; 05's kqueue.go, kqueue_test.go and other.go, the same loop's watched set on other systems):"; \
	for f in $$( (ls $$from; ls $$to) | grep -v -e '^scaffold' -e '^windows\.go$$' -e '^kqueue' -e '^other\.go$$' -e '^[0-9][0-9]-' | sort -u); do \
		changed=$$(diff -uN $$from$$f $$to$$f | grep -E '^[-+]' | grep -cvE '^(\+\+\+|---) '); \
		printf "   %-24s %4d\n" $$f $$changed; \
	done

compare: ## every stage and model side by side, against one test server process (go run ./measure, about 40 s)
	go run ./measure $(ARGS)

curve: ## the cost of one select, poll and epoll_wait as the watched set grows (Linux, about 10 s)
	go test -run '^$$' -bench WaitCost -benchtime 2000x ./06-goroutines-compare

check: ## check your answer to an exercise: make check EX=03.1 (the exercises: docs/exercises/README.md)
	@if [ -z "$(EX)" ]; then echo "which exercise? make check EX=03.1 (the list: docs/exercises/README.md)"; exit 2; fi
	@if ! grep -q '^func TestExercise$(subst .,_,$(EX))(' docs/exercises/checks/*_test.go; then echo "no exercise $(EX) (the list: docs/exercises/README.md)"; exit 2; fi
	go test -tags exercises -count=1 -run '^TestExercise$(subst .,_,$(EX))$$' ./docs/exercises/checks

check-solutions: ## every exercise's check fails on the stages as they are and passes with its solution (about a minute)
	bash docs/exercises/check-solutions.sh

pictures: ## draw docs/pictures/*.svg from real runs (go run ./measure -pictures): timelines, comparison, scaling curve (Linux, under a minute); says which it rewrote
	@before=$$($(call checksums,-path './docs/pictures/*.svg')); \
	go run ./measure -pictures $(ARGS); status=$$?; \
	$(call rewritten,-path './docs/pictures/*.svg'); exit $$status

fuzz: ## fuzz every stage's response handling (FUZZTIME=20000x inputs each)
	@for stage in $(STAGES); do go test -run '^$$' -fuzz FuzzResponseHandling -fuzztime $(FUZZTIME) ./$$stage || exit 1; done

docs: ## rerun every command whose output the docs show, put the fresh output in (go test ./docs checks it), say which files changed
	@before=$$($(call checksums,-name '*.md')); \
	go test -count=1 -run TestDocOutputs ./docs -args -update; status=$$?; \
	$(call rewritten,-name '*.md'); exit $$status

sync-scaffold: ## copy 01's scaffold*.go files to every other stage (they must stay identical)
	@for stage in $(filter-out 01-%,$(STAGES)); do cp 01-blocking/scaffold*.go $$stage/; echo "copied to $$stage"; done

cross: ## vet every package, tests included, for macOS, FreeBSD and Windows, and build every stage for them (amd64, arm64)
	@for os in darwin freebsd windows; do for arch in amd64 arm64; do \
		case $$os in windows) what="each stage is its windows.go there, which says to use WSL 2 or a Linux VM";; \
			*) what="05 watches its sockets with kqueue there, kqueue.go";; esac; \
		echo "vet and build, GOOS=$$os GOARCH=$$arch: go vet ./... && go build $(addprefix ./,$(STAGES))   ($$what)"; \
		GOOS=$$os GOARCH=$$arch go vet ./... && GOOS=$$os GOARCH=$$arch go build $(addprefix ./,$(STAGES)) || exit 1; \
	done; done

server: ## start the test server on its own: make server ADDR=127.0.0.1:8000
	go run ./internal/testserver/cmd/testserver -addr $(ADDR)
