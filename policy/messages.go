package policy

import (
	"maps"
	"slices"
)

// Messages are the texts users see: in Reply-Message, and in the codes
// sent to them. Placeholders in braces are filled in where they occur:
// {destination} the masked phone number or address a code went to,
// {tries} the attempts left, {seconds} the wait before a resend, {left}
// the recovery codes left ({tries:one|other} and the like pick a word's
// form for the number: one for 1, other else),
// {method} and {failed} the name of a method, {code} the code (only in
// CodeText and VoiceText, which are what is sent), {link} and {until} an
// invitation's link and end (InviteText).
type Messages struct {
	OfficeIP          string
	HomeIP            string
	Reconnected       string
	TOTPPrompt        string
	TOTPLink          string
	TOTPLinked        string
	TOTPNext          string
	AskPhone          string
	BadPhone          string
	TooManyBadPhones  string
	RecoveryUsed      string
	Locked            string
	ApprovalText      string
	InviteText        string
	Denied            string
	ApprovalTimeout   string
	SignInFirst       string
	SignInCode        string
	CodeInPassword    string
	CodeInPasswordApp string
	CodeSentAppend    string
	CodeSent          string
	CallPlaced        string
	CodeResent        string
	CodeText          string
	VoiceText         string
	BackupUsed        string
	ResendWait        string
	ResendTOTP        string
	MethodUnavailable string
	WrongCode         string
	TooManyWrong      string
	CodeExpired       string
	NoSecondFactor    string
	DeliveryFailed    string
	LimitReached      string
	SendRefused       string
	BadPassword       string
	Unavailable       string
	NameTOTP          string
	NameSMS           string
	NameEmail         string
	NameVoice         string
}

// field maps a configuration key to its message.
func (m *Messages) field(key string) *string {
	switch key {
	case "office_ip":
		return &m.OfficeIP
	case "home_ip":
		return &m.HomeIP
	case "reconnected":
		return &m.Reconnected
	case "totp_prompt":
		return &m.TOTPPrompt
	case "totp_link":
		return &m.TOTPLink
	case "totp_linked":
		return &m.TOTPLinked
	case "totp_next":
		return &m.TOTPNext
	case "ask_phone":
		return &m.AskPhone
	case "bad_phone":
		return &m.BadPhone
	case "too_many_bad_phones":
		return &m.TooManyBadPhones
	case "recovery_used":
		return &m.RecoveryUsed
	case "locked":
		return &m.Locked
	case "approval_text":
		return &m.ApprovalText
	case "invite_text":
		return &m.InviteText
	case "denied":
		return &m.Denied
	case "approval_timeout":
		return &m.ApprovalTimeout
	case "sign_in_first":
		return &m.SignInFirst
	case "sign_in_code":
		return &m.SignInCode
	case "code_in_password":
		return &m.CodeInPassword
	case "code_in_password_app":
		return &m.CodeInPasswordApp
	case "code_sent_append":
		return &m.CodeSentAppend
	case "code_sent":
		return &m.CodeSent
	case "call_placed":
		return &m.CallPlaced
	case "code_resent":
		return &m.CodeResent
	case "code_text":
		return &m.CodeText
	case "voice_text":
		return &m.VoiceText
	case "backup_used":
		return &m.BackupUsed
	case "resend_wait":
		return &m.ResendWait
	case "resend_totp":
		return &m.ResendTOTP
	case "method_unavailable":
		return &m.MethodUnavailable
	case "wrong_code":
		return &m.WrongCode
	case "too_many_wrong":
		return &m.TooManyWrong
	case "code_expired":
		return &m.CodeExpired
	case "no_second_factor":
		return &m.NoSecondFactor
	case "delivery_failed":
		return &m.DeliveryFailed
	case "limit_reached":
		return &m.LimitReached
	case "send_refused":
		return &m.SendRefused
	case "bad_password":
		return &m.BadPassword
	case "unavailable":
		return &m.Unavailable
	case "name_totp":
		return &m.NameTOTP
	case "name_sms":
		return &m.NameSMS
	case "name_email":
		return &m.NameEmail
	case "name_voice":
		return &m.NameVoice
	}
	return nil
}

// messageKeys are the configuration keys of all messages, in the order
// of the struct.
var messageKeys = []string{
	"office_ip", "home_ip", "reconnected", "totp_prompt", "totp_link", "totp_linked",
	"totp_next", "ask_phone", "bad_phone", "too_many_bad_phones", "recovery_used", "locked", "approval_text", "invite_text", "denied",
	"approval_timeout", "sign_in_first", "sign_in_code", "code_in_password", "code_in_password_app", "code_sent_append", "code_sent", "call_placed",
	"code_resent", "code_text", "voice_text", "backup_used", "resend_wait", "resend_totp",
	"method_unavailable", "wrong_code", "too_many_wrong", "code_expired", "no_second_factor",
	"delivery_failed", "limit_reached", "send_refused", "bad_password", "unavailable",
	"name_totp", "name_sms", "name_email", "name_voice",
}

// Set replaces the message with the given configuration key, and reports
// whether there is such a message.
func (m *Messages) Set(key, text string) bool {
	f := m.field(key)
	if f == nil {
		return false
	}
	*f = text
	return true
}

// All returns every message by its configuration key.
func (m Messages) All() map[string]string {
	all := make(map[string]string, len(messageKeys))
	for _, k := range messageKeys {
		all[k] = *m.field(k)
	}
	return all
}

// MessageKeys returns the configuration keys of the messages, sorted.
func MessageKeys() []string { return slices.Sorted(slices.Values(messageKeys)) }

// methodName is the name of method in the tenant's language.
func (m Messages) methodName(method string) string {
	switch method {
	case MethodTOTP:
		return m.NameTOTP
	case MethodSMS:
		return m.NameSMS
	case MethodEmail:
		return m.NameEmail
	case MethodVoice:
		return m.NameVoice
	}
	return method
}

// Catalog returns the shipped messages in the language tagged lang, and
// whether there are any.
func Catalog(lang string) (Messages, bool) {
	m, ok := catalogs[lang]
	return m, ok
}

// Languages returns the tags of the shipped catalogues, sorted.
func Languages() []string { return slices.Sorted(maps.Keys(catalogs)) }

// DefaultMessages are the English texts, used where a tenant sets none.
func DefaultMessages() Messages { return catalogs["en"] }

// catalogs are the shipped texts. The trusted-place texts are the same in
// every language: users know them from the providers otpgate replaces.
var catalogs = map[string]Messages{
	"en": {
		OfficeIP:          "HQ IP Allowed!",
		HomeIP:            "Home IP Allowed!",
		Reconnected:       "Reconnected",
		TOTPPrompt:        "Enter the code from your authenticator app",
		TOTPLink:          "Enter the code from your authenticator app to finish linking it",
		TOTPLinked:        "Your authenticator app is linked.",
		TOTPNext:          "Your phone's clock seems off; enter the next code from your authenticator app",
		AskPhone:          "Enter your mobile number to receive a login code",
		BadPhone:          "That is not a mobile number; enter it like +31612345678.",
		TooManyBadPhones:  "That was not a mobile number. Please log in again.",
		RecoveryUsed:      "Recovery code accepted. {left} left; ask your administrator for new ones.",
		Locked:            "Your account is locked after too many wrong codes. Please try again later or contact your administrator.",
		ApprovalText:      "Are you logging in to {gateway}? To approve it, open {link}",
		InviteText:        "Set up your login code: open {link} (valid until {until})",
		Denied:            "The login was denied.",
		ApprovalTimeout:   "The login was not approved in time. Please log in again.",
		SignInFirst:       "Sign in at {url} first, then log in again.",
		SignInCode:        "Enter the code from your authenticator app, or a recovery code",
		CodeInPassword:    "Type your password followed by your code, or by sms to get one.",
		CodeInPasswordApp: "Type your password followed by the code from your authenticator app.",
		CodeSentAppend:    "Code sent to {destination}; log in again with your password followed by the code.",
		CodeSent:          "Enter the code sent to {destination} (or type resend)",
		CallPlaced:        "Answer the call to {destination} and enter the code you hear (or type resend)",
		CodeResent:        "A new code was sent to {destination}",
		CodeText:          "Your login code is {code}",
		VoiceText:         "Your login code is {code}. Once more: {code}.",
		BackupUsed:        "Sending by {failed} failed.",
		ResendWait:        "Please wait {seconds} {seconds:second|seconds} before asking for a new code.",
		ResendTOTP:        "An authenticator app code cannot be resent.",
		MethodUnavailable: "Your account has no {method} set up.",
		WrongCode:         "Wrong code, {tries} {tries:try|tries} left",
		TooManyWrong:      "Wrong code. Please log in again.",
		CodeExpired:       "Your code has expired. Please log in again.",
		NoSecondFactor:    "Two-factor authentication is required but not set up for your account. Contact your administrator.",
		DeliveryFailed:    "Your code could not be sent. Please try again later or contact your administrator.",
		LimitReached:      "Too many codes were requested. Please try again later.",
		SendRefused:       "A code cannot be sent to you at the moment. Please contact your administrator.",
		BadPassword:       "Wrong user name or password",
		Unavailable:       "Login is unavailable at the moment. Please try again later.",
		NameTOTP:          "authenticator app",
		NameSMS:           "SMS",
		NameEmail:         "e-mail",
		NameVoice:         "voice call",
	},
	"nl": {
		OfficeIP:          "HQ IP Allowed!",
		HomeIP:            "Home IP Allowed!",
		Reconnected:       "Reconnected",
		TOTPPrompt:        "Voer de code uit uw authenticator-app in",
		TOTPLink:          "Voer de code uit uw authenticator-app in om de koppeling te voltooien",
		TOTPLinked:        "Uw authenticator-app is gekoppeld.",
		TOTPNext:          "De klok van uw telefoon lijkt niet te kloppen; voer de volgende code uit uw authenticator-app in",
		AskPhone:          "Voer uw mobiele nummer in om een inlogcode te ontvangen",
		BadPhone:          "Dat is geen mobiel nummer; voer het in als +31612345678.",
		TooManyBadPhones:  "Dat was geen mobiel nummer. Log opnieuw in.",
		RecoveryUsed:      "Herstelcode geaccepteerd. Nog {left} over; vraag uw beheerder om nieuwe.",
		Locked:            "Uw account is geblokkeerd na te veel onjuiste codes. Probeer het later opnieuw of neem contact op met uw beheerder.",
		ApprovalText:      "Meldt u zich aan bij {gateway}? Keur dit goed via {link}",
		InviteText:        "Stel uw inlogcode in: open {link} (geldig tot {until})",
		Denied:            "De aanmelding is geweigerd.",
		ApprovalTimeout:   "De aanmelding is niet op tijd goedgekeurd. Log opnieuw in.",
		SignInFirst:       "Meld u eerst aan op {url} en log daarna opnieuw in.",
		SignInCode:        "Voer de code uit uw authenticator-app in, of een herstelcode",
		CodeInPassword:    "Typ uw wachtwoord gevolgd door uw code, of gevolgd door sms om er een te krijgen.",
		CodeInPasswordApp: "Typ uw wachtwoord gevolgd door de code uit uw authenticator-app.",
		CodeSentAppend:    "Code verstuurd naar {destination}; log opnieuw in met uw wachtwoord gevolgd door de code.",
		CodeSent:          "Voer de code in die naar {destination} is gestuurd (of typ resend)",
		CallPlaced:        "Neem de oproep naar {destination} aan en voer de code in die u hoort (of typ resend)",
		CodeResent:        "Er is een nieuwe code naar {destination} gestuurd",
		CodeText:          "Uw inlogcode is {code}",
		VoiceText:         "Uw inlogcode is {code}. Nogmaals: {code}.",
		BackupUsed:        "Versturen per {failed} is mislukt.",
		ResendWait:        "Wacht {seconds} {seconds:seconde|seconden} voordat u een nieuwe code aanvraagt.",
		ResendTOTP:        "Een code uit een authenticator-app kan niet opnieuw worden verstuurd.",
		MethodUnavailable: "Voor uw account is geen {method} ingesteld.",
		WrongCode:         "Onjuiste code, nog {tries} {tries:poging|pogingen}",
		TooManyWrong:      "Onjuiste code. Log opnieuw in.",
		CodeExpired:       "Uw code is verlopen. Log opnieuw in.",
		NoSecondFactor:    "Tweestapsverificatie is verplicht, maar niet ingesteld voor uw account. Neem contact op met uw beheerder.",
		DeliveryFailed:    "Uw code kon niet worden verstuurd. Probeer het later opnieuw of neem contact op met uw beheerder.",
		LimitReached:      "Er zijn te veel codes aangevraagd. Probeer het later opnieuw.",
		SendRefused:       "Er kan nu geen code naar u worden verstuurd. Neem contact op met uw beheerder.",
		BadPassword:       "Onjuiste gebruikersnaam of wachtwoord",
		Unavailable:       "Inloggen is op dit moment niet mogelijk. Probeer het later opnieuw.",
		NameTOTP:          "authenticator-app",
		NameSMS:           "sms",
		NameEmail:         "e-mail",
		NameVoice:         "telefoonoproep",
	},
}
