package alidns

import (
	"fmt"
	"strings"

	"github.com/homederp/homederp/internal/usermsg"
)

// APIError is an error answer of the AliDNS API. Its Error text is meant
// for the user: it says what to do, not only what went wrong.
type APIError struct {
	Status    int    // HTTP status, e.g. 404
	Code      string // e.g. "InvalidAccessKeyId.NotFound"
	Message   string // Alibaba Cloud's own words
	RequestID string // for Alibaba Cloud's support
	Domain    string // the domain involved, if known, e.g. "example.com"
}

// Throttled reports a throttling code ("Throttling.User",
// "Throttling.Api", ...), whatever the HTTP status.
func (e *APIError) Throttled() bool { return strings.HasPrefix(e.Code, "Throttling") }

// NameZone names the domain involved (see records.Explain).
func (e *APIError) NameZone(zone string) { e.Domain = zone }

// Temporary reports whether asking again later may succeed: the API
// was throttling or having trouble, and the request itself was not judged.
func (e *APIError) Temporary() bool { return e.Throttled() || e.temporary() }

// temporary reports a failure that retrying may cure.
func (e *APIError) temporary() bool {
	switch e.Code {
	case "ServiceUnavailable", "InternalError", "UnknownError", "UnKnownError":
		return true
	}
	return false
}

// Raw is Alibaba Cloud's status, code and message, e.g. "HTTP 404
// InvalidAccessKeyId.NotFound: Specified access key is not found.".
func (e *APIError) Raw() string {
	s := fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += "; RequestId " + e.RequestID
	}
	return s
}

// The messages of APIError, by their ID in the web UI's catalogues
// (webui/locales).
const (
	msgKeyID      = "provider.alidns.key_id"
	msgInactive   = "provider.alidns.inactive"
	msgSignature  = "provider.alidns.signature"
	msgClock      = "provider.alidns.clock"
	msgPermission = "provider.alidns.permission"
	msgNoDomain   = "provider.alidns.no_domain"
	msgLocked     = "provider.alidns.locked"
	msgTTL        = "provider.alidns.ttl"
	msgExists     = "provider.alidns.exists"
	msgConflict   = "provider.alidns.conflict"
	msgThrottled  = "provider.alidns.throttled"
	msgTrouble    = "provider.alidns.trouble"
	msgRefused    = "provider.alidns.refused"
)

// messages are their English texts (usermsg.Say templates).
var messages = map[string]string{
	msgKeyID:      "Alibaba Cloud does not know this AccessKey ID: it is wrong or deleted. Create an AccessKey for a RAM user (RAM 访问控制 → 用户 → 创建 AccessKey) and paste its ID and secret ({{.Raw}})",
	msgInactive:   "this AccessKey is disabled: enable it in RAM 访问控制, or create a new one ({{.Raw}})",
	msgSignature:  "Alibaba Cloud rejected the request's signature: the AccessKey secret does not belong to this AccessKey ID. Paste the ID and the secret of the same AccessKey ({{.Raw}})",
	msgClock:      "Alibaba Cloud says this box's clock is wrong, so it refuses the signed request; the box sets its clock by NTP: check that it can reach an NTP server ({{.Raw}})",
	msgPermission: "the AccessKey's RAM user may not do this: give it the policy AliyunDNSFullAccess, or read and write access to the records of {{.Domain}} ({{.Raw}})",
	msgNoDomain:   "the domain {{.Domain}} is not in this Alibaba Cloud account: add it to 云解析 DNS, or use an AccessKey of the account that holds it ({{.Raw}})",
	msgLocked:     "AliDNS has locked or blocked the domain {{.Domain}} or this record, so it cannot be changed ({{.Raw}})",
	msgTTL:        "AliDNS refused the record's TTL for the plan of {{.Domain}} ({{.Raw}})",
	msgExists:     "an identical record already exists at AliDNS ({{.Raw}})",
	msgConflict:   "a conflicting record (for example a CNAME) already exists for this name at AliDNS; remove it in the AliDNS console ({{.Raw}})",
	msgThrottled:  "AliDNS is rate-limiting this account ({{.Raw}})",
	msgTrouble:    "AliDNS's API is having trouble; homederp retries later ({{.Raw}})",
	msgRefused:    "AliDNS refused the request ({{.Raw}})",
}

// UserMessage is e's sentence for the user: its ID in the web UI's
// catalogues, and its arguments (Domain, and Raw, what the API said).
func (e *APIError) UserMessage() (id string, args map[string]any) {
	domain := e.Domain
	if domain == "" {
		domain = "your domain"
	}
	switch {
	case e.Code == "InvalidAccessKeyId.NotFound" || e.Code == "InvalidAccessKeyId":
		id = msgKeyID
	case e.Code == "InvalidAccessKeyId.Inactive":
		id = msgInactive
	case e.Code == "SignatureDoesNotMatch" || e.Code == "IncompleteSignature":
		id = msgSignature
	case e.Code == "InvalidTimeStamp.Expired" || e.Code == "InvalidTimeStamp.Format":
		id = msgClock
	case strings.HasPrefix(e.Code, "Forbidden") || e.Code == "NoPermission" || e.Status == 403:
		id = msgPermission
	case e.Code == "InvalidDomainName.NoExist" || e.Code == "IncorrectDomainUser" || e.Code == "DomainNotExist" || e.Code == "InvalidDomainName.Format":
		id = msgNoDomain
	case e.Code == "DomainForbidden" || e.Code == "RecordForbidden.BlackHole" || e.Code == "DomainRecordLocked":
		id = msgLocked
	case e.Code == "QuotaExceeded.TTL":
		id = msgTTL
	case e.Code == "DomainRecordDuplicate":
		id = msgExists
	case e.Code == "DomainRecordConflict":
		id = msgConflict
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
