package config

import "strings"

// Problem is one thing wrong with the configuration. Var names the
// environment variable to fix; Message never contains a secret value.
type Problem struct {
	Var     string
	Message string
}

func (p Problem) String() string {
	return p.Var + ": " + p.Message
}

// ValidationError is returned by Load when the configuration is unusable. It
// lists every problem found, so an operator can fix them all in one go.
type ValidationError struct {
	Problems []Problem
}

// Error returns one line per problem, in the form "VAR: message".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
