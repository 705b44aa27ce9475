package emailconn

import (
	"testing"
)

func TestValidateActionsBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, problem string
		ok          bool
	}{
		{"", "", true},
		{"https://approvals.example.com", "", true},
		{"https://approvals.example.com:8443/", "", true},
		{"https://approvals.example.com/#", "fragment is not allowed", false},
		{"https://approvals.example.com:99999", `port "99999" is out of range`, false},
		{"approvals.example.com", "scheme is missing (write an absolute url such as https://approvals.example.com)", false},
	}
	for _, tt := range tests {
		problem, ok := validateActionsBaseURL(tt.in)
		if problem != tt.problem || ok != tt.ok {
			t.Errorf("validateActionsBaseURL(%q) = %q, %v, want %q, %v", tt.in, problem, ok, tt.problem, tt.ok)
		}
	}
}
