// The text/event-stream framing (the HTML standard's "Server-sent events" parsing), fed chunks
// of a streamed fetch as they arrive.

export interface StreamEvent {
  event: string
  data: string
  id: string | null
}

/** Turns chunks of text into events; a field or event split across chunks waits for the rest. */
export class SseParser {
  private buffer = ''
  private event = ''
  private data: string[] = []
  private id: string | null = null
  private pendingCr = false

  /** The events completed by `chunk`. */
  feed(chunk: string): StreamEvent[] {
    const done: StreamEvent[] = []
    let text = chunk
    // A CR ending the previous chunk may be the first half of a CRLF.
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1)
    this.pendingCr = false
    this.buffer += text
    let start = 0
    for (let i = 0; i < this.buffer.length; i++) {
      const char = this.buffer[i]
      if (char !== '\n' && char !== '\r') continue
      const line = this.buffer.slice(start, i)
      if (char === '\r') {
        if (i + 1 === this.buffer.length) this.pendingCr = true
        else if (this.buffer[i + 1] === '\n') i++
      }
      start = i + 1
      const event = this.line(line)
      if (event) done.push(event)
    }
    this.buffer = this.buffer.slice(start)
    return done
  }

  private line(line: string): StreamEvent | null {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return null // a comment: the server's keep-alive
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
    else if (field === 'id' && !value.includes('\0')) this.id = value
    return null
  }

  private dispatch(): StreamEvent | null {
    const event =
      this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), id: this.id } : null
    this.event = ''
    this.data = []
    return event
  }
}
