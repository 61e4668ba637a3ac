// Real Outlook .msg files for the tests (tests/msggen.py drives this script).
//
//   node msgfile.mjs write OUT.msg < streams.json   # {"path/in/file": "<base64>", ...}
//   node msgfile.mjs read IN.msg                    # prints what @kenjiuno/msgreader reads
//
// `write` lays the given streams (the MS-OXMSG layout, built by tests/msggen.py) into a
// Compound File Binary container with SheetJS cfb; storages are created from the paths.
// `read` opens a file with @kenjiuno/msgreader, whose CFB parser is its own (independent
// of cfb and of the olefile that extract-msg uses), and prints its fields as JSON.
import fs from 'node:fs'
import CFB from 'cfb'
import MsgReaderModule from '@kenjiuno/msgreader'

const MsgReader = MsgReaderModule.default ?? MsgReaderModule
const [cmd, file] = process.argv.slice(2)

if (cmd === 'write') {
  const streams = JSON.parse(fs.readFileSync(0, 'utf8'))
  const cfb = CFB.utils.cfb_new()
  for (const [path, b64] of Object.entries(streams)) {
    CFB.utils.cfb_add(cfb, '/' + path, Buffer.from(b64, 'base64'))
  }
  CFB.utils.cfb_del(cfb, '/\u0001Sh33tJ5') // cfb's placeholder stream
  fs.writeFileSync(file, CFB.write(cfb, { type: 'buffer', fileType: 'cfb' }))
} else if (cmd === 'read') {
  const reader = new MsgReader(fs.readFileSync(file))
  const info = reader.getFileData()
  if (info.error) {
    console.error(info.error)
    process.exit(1)
  }
  const attachments = (info.attachments || []).map((a) => {
    const got = reader.getAttachment(a)
    return { fileName: got.fileName, content: Buffer.from(got.content).toString('base64') }
  })
  console.log(JSON.stringify({
    subject: info.subject,
    senderName: info.senderName,
    senderEmail: info.senderEmail,
    body: info.body,
    messageDeliveryTime: info.messageDeliveryTime,
    clientSubmitTime: info.clientSubmitTime,
    recipients: (info.recipients || []).map((r) => ({ name: r.name, smtpAddress: r.smtpAddress })),
    attachments,
  }))
} else {
  console.error('usage: node msgfile.mjs write OUT.msg < streams.json | read IN.msg')
  process.exit(2)
}
