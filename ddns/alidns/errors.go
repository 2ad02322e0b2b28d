package alidns

import (
	"fmt"
	"strings"
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

// The messages, one format string each so that a catalogue can translate
// them.
const (
	msgKeyID      = "Alibaba Cloud does not know this AccessKey ID: it is wrong or deleted. Create an AccessKey for a RAM user (RAM 访问控制 → 用户 → 创建 AccessKey) and paste its ID and secret"
	msgInactive   = "this AccessKey is disabled: enable it in RAM 访问控制, or create a new one"
	msgSignature  = "Alibaba Cloud rejected the request's signature: the AccessKey secret does not belong to this AccessKey ID. Paste the ID and the secret of the same AccessKey"
	msgClock      = "Alibaba Cloud says this box's clock is wrong, so it refuses the signed request; the box sets its clock by NTP: check that it can reach an NTP server"
	msgPermission = "the AccessKey's RAM user may not do this: give it the policy AliyunDNSFullAccess, or read and write access to the records of %s"
	msgNoDomain   = "the domain %s is not in this Alibaba Cloud account: add it to 云解析 DNS, or use an AccessKey of the account that holds it"
	msgLocked     = "AliDNS has locked or blocked the domain %s or this record, so it cannot be changed"
	msgTTL        = "AliDNS refused the record's TTL for the plan of %s"
	msgExists     = "an identical record already exists at AliDNS"
	msgConflict   = "a conflicting record (for example a CNAME) already exists for this name at AliDNS; remove it in the AliDNS console"
	msgThrottled  = "AliDNS is rate-limiting this account"
	msgTrouble    = "AliDNS's API is having trouble; homederp retries later"
	msgRefused    = "AliDNS refused the request"
)

func (e *APIError) Error() string {
	domain := e.Domain
	if domain == "" {
		domain = "your domain"
	}
	var msg string
	switch {
	case e.Code == "InvalidAccessKeyId.NotFound" || e.Code == "InvalidAccessKeyId":
		msg = msgKeyID
	case e.Code == "InvalidAccessKeyId.Inactive":
		msg = msgInactive
	case e.Code == "SignatureDoesNotMatch" || e.Code == "IncompleteSignature":
		msg = msgSignature
	case e.Code == "InvalidTimeStamp.Expired" || e.Code == "InvalidTimeStamp.Format":
		msg = msgClock
	case strings.HasPrefix(e.Code, "Forbidden") || e.Code == "NoPermission" || e.Status == 403:
		msg = fmt.Sprintf(msgPermission, domain)
	case e.Code == "InvalidDomainName.NoExist" || e.Code == "IncorrectDomainUser" || e.Code == "DomainNotExist" || e.Code == "InvalidDomainName.Format":
		msg = fmt.Sprintf(msgNoDomain, domain)
	case e.Code == "DomainForbidden" || e.Code == "RecordForbidden.BlackHole" || e.Code == "DomainRecordLocked":
		msg = fmt.Sprintf(msgLocked, domain)
	case e.Code == "QuotaExceeded.TTL":
		msg = fmt.Sprintf(msgTTL, domain)
	case e.Code == "DomainRecordDuplicate":
		msg = msgExists
	case e.Code == "DomainRecordConflict":
		msg = msgConflict
	case e.Throttled():
		msg = msgThrottled
	case e.temporary():
		msg = msgTrouble
	default:
		msg = msgRefused
	}
	return fmt.Sprintf("%s (%s)", msg, e.Raw())
}
