module github.com/peerdrop/peerdrop

go 1.26.0

require (
	github.com/pion/logging v0.2.2
	github.com/pion/stun v0.6.1
	github.com/pion/turn/v2 v2.1.6
	github.com/zeebo/blake3 v0.2.4
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.58.0
	golang.org/x/net v0.62.0
)

require (
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/pion/dtls/v2 v2.2.7 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/transport/v2 v2.2.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
