package apiclient

// CodedError is an error answer that names its failure with a code, as
// Tencent Cloud's and Alibaba Cloud's APIs do. The code, not the HTTP
// status, says whether the provider throttles and whether retrying may
// cure the failure.
type CodedError interface {
	error
	Throttled() bool // e.g. "Throttling.User", "RequestLimitExceeded"
	// Temporary reports whether asking again later may succeed:
	// throttling, or trouble such as "ServiceUnavailable".
	Temporary() bool
}

// CodedVerdict is the Classify of a vendor whose error answers are
// CodedErrors: e is the error in an answer's JSON with HTTP status, nil
// if it holds none. A throttling code is retried as throttling, a
// temporary code or a 5xx status is retried, any other code is final; an
// answer without an error is trouble if its status is 5xx, and passes
// otherwise.
func CodedVerdict(vendor string, status int, e CodedError) Verdict {
	switch {
	case e == nil && status >= 500:
		return Verdict{Retry: true, Err: &TroubleError{Vendor: vendor, Status: status}}
	case e == nil:
		return Verdict{}
	case e.Throttled():
		return Verdict{Retry: true, Throttled: true, Err: e}
	case e.Temporary() || status >= 500:
		return Verdict{Retry: true, Err: e}
	}
	return Verdict{Err: e}
}
