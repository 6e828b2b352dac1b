package contracts

import (
	"fmt"

	"github.com/stellar/go-stellar-sdk/xdr"
)

// TxCodes names transaction result codes the way Horizon does ("tx_bad_seq").
var TxCodes = map[xdr.TransactionResultCode]string{
	xdr.TransactionResultCodeTxSuccess:             "tx_success",
	xdr.TransactionResultCodeTxFailed:              "tx_failed",
	xdr.TransactionResultCodeTxTooEarly:            "tx_too_early",
	xdr.TransactionResultCodeTxTooLate:             "tx_too_late",
	xdr.TransactionResultCodeTxMissingOperation:    "tx_missing_operation",
	xdr.TransactionResultCodeTxBadSeq:              "tx_bad_seq",
	xdr.TransactionResultCodeTxBadAuth:             "tx_bad_auth",
	xdr.TransactionResultCodeTxInsufficientBalance: "tx_insufficient_balance",
	xdr.TransactionResultCodeTxNoAccount:           "tx_no_source_account",
	xdr.TransactionResultCodeTxInsufficientFee:     "tx_insufficient_fee",
	xdr.TransactionResultCodeTxBadAuthExtra:        "tx_bad_auth_extra",
	xdr.TransactionResultCodeTxInternalError:       "tx_internal_error",
	xdr.TransactionResultCodeTxNotSupported:        "tx_not_supported",
	xdr.TransactionResultCodeTxBadMinSeqAgeOrGap:   "tx_bad_minseq_age_or_gap",
	xdr.TransactionResultCodeTxMalformed:           "tx_malformed",
}

// OpCodes names the operation-level result codes ("op_bad_auth").
var OpCodes = map[xdr.OperationResultCode]string{
	xdr.OperationResultCodeOpBadAuth:      "op_bad_auth",
	xdr.OperationResultCodeOpNoAccount:    "op_no_source_account",
	xdr.OperationResultCodeOpNotSupported: "op_not_supported",
}

// PaymentCodes names the payment result codes ("op_underfunded").
var PaymentCodes = map[xdr.PaymentResultCode]string{
	xdr.PaymentResultCodePaymentSuccess:          "op_success",
	xdr.PaymentResultCodePaymentMalformed:        "op_malformed",
	xdr.PaymentResultCodePaymentUnderfunded:      "op_underfunded",
	xdr.PaymentResultCodePaymentSrcNoTrust:       "op_src_no_trust",
	xdr.PaymentResultCodePaymentSrcNotAuthorized: "op_src_not_authorized",
	xdr.PaymentResultCodePaymentNoDestination:    "op_no_destination",
	xdr.PaymentResultCodePaymentNoTrust:          "op_no_trust",
	xdr.PaymentResultCodePaymentNotAuthorized:    "op_not_authorized",
	xdr.PaymentResultCodePaymentLineFull:         "op_line_full",
	xdr.PaymentResultCodePaymentNoIssuer:         "op_no_issuer",
}

// CreateAccountCodes names the create-account result codes.
var CreateAccountCodes = map[xdr.CreateAccountResultCode]string{
	xdr.CreateAccountResultCodeCreateAccountSuccess:      "op_success",
	xdr.CreateAccountResultCodeCreateAccountMalformed:    "op_malformed",
	xdr.CreateAccountResultCodeCreateAccountUnderfunded:  "op_underfunded",
	xdr.CreateAccountResultCodeCreateAccountLowReserve:   "op_low_reserve",
	xdr.CreateAccountResultCodeCreateAccountAlreadyExist: "op_already_exists",
}

// ResultCodes decodes a transaction result (Horizon's result_xdr, base64) into Horizon's
// code names: the transaction's, and one per operation when the transaction was applied.
func ResultCodes(resultXDR string) (string, []string, error) {
	var r xdr.TransactionResult
	if err := xdr.SafeUnmarshalBase64(resultXDR, &r); err != nil {
		return "", nil, fmt.Errorf("result_xdr does not decode: %w", err)
	}
	tx := TxCodes[r.Result.Code]
	if tx == "" {
		tx = fmt.Sprintf("tx_code_%d", r.Result.Code)
	}
	var ops []string
	if r.Result.Results != nil {
		for _, op := range *r.Result.Results {
			ops = append(ops, opCodeName(op))
		}
	}
	return tx, ops, nil
}

func opCodeName(op xdr.OperationResult) string {
	if op.Code != xdr.OperationResultCodeOpInner {
		if n, ok := OpCodes[op.Code]; ok {
			return n
		}
		return fmt.Sprintf("op_code_%d", op.Code)
	}
	tr := op.Tr
	switch {
	case tr == nil:
		return "op_unknown"
	case tr.PaymentResult != nil:
		return PaymentCodes[tr.PaymentResult.Code]
	case tr.CreateAccountResult != nil:
		return CreateAccountCodes[tr.CreateAccountResult.Code]
	case tr.BumpSeqResult != nil:
		if tr.BumpSeqResult.Code == xdr.BumpSequenceResultCodeBumpSequenceSuccess {
			return "op_success"
		}
		return "op_bad_seq"
	}
	return "op_unknown"
}

// PermanentRefusal reports whether a transaction code Horizon answered a submission with
// (for a transaction that is in no ledger) means the envelope can never be applied as it is:
// its time window passed, its sequence was consumed, its signatures or form are wrong. Other
// codes (too early, fee or balance of the channel, internal errors) are retried.
func PermanentRefusal(txCode string) bool {
	switch txCode {
	case "tx_too_late", "tx_bad_seq", "tx_bad_auth", "tx_bad_auth_extra", "tx_malformed",
		"tx_no_source_account", "tx_missing_operation", "tx_not_supported", "tx_failed":
		return true
	}
	return false
}
