// Judges a bailout envelope with the JavaScript Stellar SDK (@stellar/stellar-base), not the
// Go SDK the orchestrator uses: decodes it, recomputes the hash under the network passphrase
// and verifies each council signature against that hash the way the network does (the
// signer's ed25519 key over the transaction hash), and under another passphrase.
// Input (stdin, JSON): {xdr, passphrase, other_passphrase, signatures: [{signer, signature}]}.
// Output (stdout, JSON): what the envelope says and which signatures hold.
const { Transaction, Keypair } = require('@stellar/stellar-base');

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const tx = new Transaction(req.xdr, req.passphrase);
  const other = new Transaction(req.xdr, req.other_passphrase);
  const op = tx.operations[0];
  const valid = (t) => req.signatures.map((s) =>
    Keypair.fromPublicKey(s.signer).verify(t.hash(), Buffer.from(s.signature, 'base64')));
  process.stdout.write(JSON.stringify({
    hash: tx.hash().toString('hex'),
    tx_source: tx.source,
    sequence: tx.sequence,
    fee: tx.fee,
    op_type: op.type,
    op_source: op.source || '',
    destination: op.destination,
    asset: op.asset.isNative() ? 'XLM' : op.asset.getCode() + ':' + op.asset.getIssuer(),
    amount: op.amount,
    min_time: tx.timeBounds ? tx.timeBounds.minTime : '',
    max_time: tx.timeBounds ? tx.timeBounds.maxTime : '',
    memo: tx.memo.type + ':' + (tx.memo.value ? Buffer.from(tx.memo.value).toString('hex') : ''),
    operations: tx.operations.length,
    valid: valid(tx),
    valid_other_network: valid(other),
  }));
});
