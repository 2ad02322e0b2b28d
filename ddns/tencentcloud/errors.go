package tencentcloud

import (
	"fmt"
	"strings"
)

// APIError is an error answer of the Tencent Cloud API. Its Error text is
// meant for the user: it says what to do, not only what went wrong.
type APIError struct {
	Code      string // e.g. "AuthFailure.SignatureFailure"
	Message   string // Tencent Cloud's own words
	RequestID string // for Tencent Cloud's support
	Domain    string // the domain involved, if known, e.g. "example.com"
}

// Throttled reports one of the codes Tencent Cloud answers when it
// throttles (common error codes and DNSPod's own).
func (e *APIError) Throttled() bool { return strings.HasPrefix(e.Code, "RequestLimitExceeded") }

// NameZone names the domain involved (see records.Explain).
func (e *APIError) NameZone(zone string) { e.Domain = zone }

// Temporary reports whether asking again later may succeed: the API
// was throttling or having trouble, and the request itself was not judged.
func (e *APIError) Temporary() bool { return e.Throttled() || e.temporary() }

// temporary reports a failure that retrying may cure.
func (e *APIError) temporary() bool {
	switch e.Code {
	case "InternalError", "ServiceUnavailable", "FailedOperation.UnknowError", "ResourceUnavailable":
		return true
	}
	return false
}

// Raw is Tencent Cloud's code and message, e.g. "AuthFailure.SecretIdNotFound:
// The SecretId is not found".
func (e *APIError) Raw() string {
	s := e.Code + ": " + e.Message
	if e.RequestID != "" {
		s += "; RequestId " + e.RequestID
	}
	return s
}

// The messages, one format string each so that a catalogue can translate
// them.
const (
	msgSecretID   = "Tencent Cloud does not know this SecretId: it is wrong, deleted or disabled. Create an API key under Tencent Cloud console → 访问管理 (CAM) → API密钥管理 and paste its SecretId and SecretKey"
	msgSignature  = "Tencent Cloud rejected the request's signature: the SecretKey does not belong to this SecretId. Paste the SecretId and the SecretKey of the same API key"
	msgClock      = "Tencent Cloud says this box's clock is more than 5 minutes off, so it refuses the signed request; the box sets its clock by NTP: check that it can reach an NTP server"
	msgPermission = "the API key may not do this: give its CAM user the policy QcloudDNSPodFullAccess, or read and write access to the DNSPod records of %s"
	msgNoDomain   = "the domain %s is not in this DNSPod account: add it in the DNSPod console, or use an API key of the account that holds it"
	msgLocked     = "DNSPod has locked or blocked the domain %s, so its records cannot be changed"
	msgTTL        = "DNSPod refused the record's TTL for the plan of %s"
	msgExists     = "an identical record already exists at DNSPod"
	msgThrottled  = "DNSPod is rate-limiting this account"
	msgTrouble    = "DNSPod's API is having trouble; homederp retries later"
	msgRefused    = "DNSPod refused the request"
)

func (e *APIError) Error() string {
	domain := e.Domain
	if domain == "" {
		domain = "your domain"
	}
	var msg string
	switch {
	case e.Code == "AuthFailure.SecretIdNotFound" || e.Code == "AuthFailure.InvalidSecretId":
		msg = msgSecretID
	case e.Code == "AuthFailure.SignatureFailure" || e.Code == "AuthFailure.InvalidAuthorization":
		msg = msgSignature
	case e.Code == "AuthFailure.SignatureExpire":
		msg = msgClock
	case e.Code == "AuthFailure.UnauthorizedOperation" || e.Code == "UnauthorizedOperation" || strings.HasPrefix(e.Code, "OperationDenied") || strings.HasPrefix(e.Code, "AuthFailure"):
		msg = fmt.Sprintf(msgPermission, domain)
	case e.Code == "InvalidParameterValue.DomainNotExists" || e.Code == "InvalidParameter.DomainInvalid" || e.Code == "FailedOperation.NotDomainOwner":
		msg = fmt.Sprintf(msgNoDomain, domain)
	case e.Code == "FailedOperation.DomainIsLocked" || e.Code == "FailedOperation.DomainIsSpam":
		msg = fmt.Sprintf(msgLocked, domain)
	case e.Code == "LimitExceeded.RecordTtlLimit":
		msg = fmt.Sprintf(msgTTL, domain)
	case e.Code == "InvalidParameter.DomainRecordExist":
		msg = msgExists
	case e.Throttled():
		msg = msgThrottled
	case e.temporary():
		msg = msgTrouble
	default:
		msg = msgRefused
	}
	return fmt.Sprintf("%s (%s)", msg, e.Raw())
}
