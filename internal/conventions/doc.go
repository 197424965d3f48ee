// Package conventions holds the tests of the conventions every public Shardline package keeps
// (STYLE.md rule 17): one configuration error, matched by one sentinel, naming the option at
// fault, from every constructor; one name for the per-call timeout; package documentation
// that opens with a usage snippet, and a runnable example in every package applications
// import. It has no code of its own.
//
//	go test ./internal/conventions
package conventions
