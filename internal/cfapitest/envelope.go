package cfapitest

import (
	"encoding/json"
	"net/http"
)

// Message is one entry of an envelope's errors or messages list.
type Message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// ResultInfo is the pagination block of list and detail responses.
type ResultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
}

type successEnvelope struct {
	Success    bool      `json:"success"`
	Errors     []Message `json:"errors"`
	Messages   []Message `json:"messages"`
	Result     any       `json:"result"`
	ResultInfo any       `json:"result_info,omitempty"`
}

type failureEnvelope struct {
	Success  bool      `json:"success"`
	Errors   []Message `json:"errors"`
	Messages []Message `json:"messages"`
	Result   any       `json:"result"`
}

// WriteSuccess writes a Cloudflare success envelope. A nil result is written
// as {} because the 2024 spec does not allow null there (x-validation-quirks);
// a nil resultInfo is left out.
func WriteSuccess(w http.ResponseWriter, status int, result, resultInfo any) {
	if result == nil {
		result = struct{}{}
	}
	writeJSON(w, status, successEnvelope{
		Success:    true,
		Errors:     []Message{},
		Messages:   []Message{},
		Result:     result,
		ResultInfo: resultInfo,
	})
}

// WriteFailure writes a Cloudflare failure envelope with one error.
func WriteFailure(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, failureEnvelope{
		Success:  false,
		Errors:   []Message{{Code: code, Message: msg}},
		Messages: []Message{},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the envelopes above are marshalled; a failure here is a
		// bug in a test's result value.
		http.Error(w, "cfapitest: cannot marshal envelope: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
