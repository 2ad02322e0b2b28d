package tencentcloud

import (
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
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

// The messages of APIError, by their ID in the web UI's catalogues
// (webui/locales).
const (
	msgSecretID   = "provider.dnspod.secret_id"
	msgSignature  = "provider.dnspod.signature"
	msgClock      = "provider.dnspod.clock"
	msgPermission = "provider.dnspod.permission"
	msgNoDomain   = "provider.dnspod.no_domain"
	msgLocked     = "provider.dnspod.locked"
	msgTTL        = "provider.dnspod.ttl"
	msgExists     = "provider.dnspod.exists"
	msgThrottled  = "provider.dnspod.throttled"
	msgTrouble    = "provider.dnspod.trouble"
	msgRefused    = "provider.dnspod.refused"
)

// messages are their English texts (usermsg.Say templates).
var messages = map[string]string{
	msgSecretID:   "Tencent Cloud does not know this SecretId: it is wrong, deleted or disabled. Create an API key under Tencent Cloud console → 访问管理 (CAM) → API密钥管理 and paste its SecretId and SecretKey ({{.Raw}})",
	msgSignature:  "Tencent Cloud rejected the request's signature: the SecretKey does not belong to this SecretId. Paste the SecretId and the SecretKey of the same API key ({{.Raw}})",
	msgClock:      "Tencent Cloud says this box's clock is more than 5 minutes off, so it refuses the signed request; the box sets its clock by NTP: check that it can reach an NTP server ({{.Raw}})",
	msgPermission: "the API key may not do this: give its CAM user the policy QcloudDNSPodFullAccess, or read and write access to the DNSPod records of {{.Domain}} ({{.Raw}})",
	msgNoDomain:   "the domain {{.Domain}} is not in this DNSPod account: add it in the DNSPod console, or use an API key of the account that holds it ({{.Raw}})",
	msgLocked:     "DNSPod has locked or blocked the domain {{.Domain}}, so its records cannot be changed ({{.Raw}})",
	msgTTL:        "DNSPod refused the record's TTL for the plan of {{.Domain}} ({{.Raw}})",
	msgExists:     "an identical record already exists at DNSPod ({{.Raw}})",
	msgThrottled:  "DNSPod is rate-limiting this account ({{.Raw}})",
	msgTrouble:    "DNSPod's API is having trouble; homederp retries later ({{.Raw}})",
	msgRefused:    "DNSPod refused the request ({{.Raw}})",
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues, and its arguments (Domain, and Raw, what the API said).
func (e *APIError) UserMessage() (id string, args map[string]any) {
	domain := e.Domain
	if domain == "" {
		domain = "your domain"
	}
	switch {
	case e.Code == "AuthFailure.SecretIdNotFound" || e.Code == "AuthFailure.InvalidSecretId":
		id = msgSecretID
	case e.Code == "AuthFailure.SignatureFailure" || e.Code == "AuthFailure.InvalidAuthorization":
		id = msgSignature
	case e.Code == "AuthFailure.SignatureExpire":
		id = msgClock
	case e.Code == "AuthFailure.UnauthorizedOperation" || e.Code == "UnauthorizedOperation" || strings.HasPrefix(e.Code, "OperationDenied") || strings.HasPrefix(e.Code, "AuthFailure"):
		id = msgPermission
	case e.Code == "InvalidParameterValue.DomainNotExists" || e.Code == "InvalidParameter.DomainInvalid" || e.Code == "FailedOperation.NotDomainOwner":
		id = msgNoDomain
	case e.Code == "FailedOperation.DomainIsLocked" || e.Code == "FailedOperation.DomainIsSpam":
		id = msgLocked
	case e.Code == "LimitExceeded.RecordTtlLimit":
		id = msgTTL
	case e.Code == "InvalidParameter.DomainRecordExist":
		id = msgExists
	case e.Throttled():
		id = msgThrottled
	case e.temporary():
		id = msgTrouble
	default:
		id = msgRefused
	}
	return id, map[string]any{"Domain": domain, "Raw": e.Raw()}
}

func (e *APIError) Error() string {
	id, args := e.UserMessage()
	msg, _ := usermsg.Say(id, messages[id], args)
	return msg
}
