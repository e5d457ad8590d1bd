// The column arrays of one FlowBatch that the sFlow decoder and the frame parser write, fetched
// once per batch and refetched only when the batch grows (FlowBatch swaps its arrays then).
import type { FlowBatch } from '@flowbus/bus-schemas'

/**
 * Column arrays of a batch, each fetched on first use so that a column no flow uses stays
 * absent. `bind` must be called with the batch before each use: it keeps the arrays while the
 * batch and its capacity are the same, so callers reserve rows before binding.
 */
export class FlowColumnArrays {
  #batch: FlowBatch | undefined
  #capacity = -1
  #timeReceived: Uint32Array | undefined
  #exporterAddress: Uint8Array | undefined
  #samplingRate: Uint32Array | undefined
  #inIf: Uint32Array | undefined
  #outIf: Uint32Array | undefined
  #forwardingStatus: Uint8Array | undefined
  #bytes: Float64Array | undefined
  #packets: Float64Array | undefined
  #etype: Uint16Array | undefined
  #srcMAC: Float64Array | undefined
  #dstMAC: Float64Array | undefined
  #srcVlan: Uint16Array | undefined
  #dstVlan: Uint16Array | undefined
  #srcAddr: Uint8Array | undefined
  #dstAddr: Uint8Array | undefined
  #nextHop: Uint8Array | undefined
  #srcNetMask: Uint8Array | undefined
  #dstNetMask: Uint8Array | undefined
  #srcAS: Uint32Array | undefined
  #dstAS: Uint32Array | undefined
  #proto: Uint8Array | undefined
  #ipTTL: Uint8Array | undefined
  #ipTos: Uint8Array | undefined
  #ipFragmentID: Uint32Array | undefined
  #ipFragmentOffset: Uint16Array | undefined
  #ipv6FlowLabel: Uint32Array | undefined
  #srcPort: Uint16Array | undefined
  #dstPort: Uint16Array | undefined
  #tcpFlags: Uint16Array | undefined
  #icmpv4Type: Uint8Array | undefined
  #icmpv4Code: Uint8Array | undefined
  #icmpv6Type: Uint8Array | undefined
  #icmpv6Code: Uint8Array | undefined

  /** Points at `batch`, dropping cached arrays if it is another batch or it has grown. */
  bind(batch: FlowBatch): this {
    if (batch === this.#batch && batch.capacity === this.#capacity) return this
    this.#batch = batch
    this.#capacity = batch.capacity
    this.#timeReceived = this.#exporterAddress = this.#samplingRate = undefined
    this.#inIf = this.#outIf = this.#srcAS = this.#dstAS = this.#ipFragmentID = this.#ipv6FlowLabel = undefined
    this.#forwardingStatus = this.#srcNetMask = this.#dstNetMask = this.#proto = this.#ipTTL = this.#ipTos = undefined
    this.#icmpv4Type = this.#icmpv4Code = this.#icmpv6Type = this.#icmpv6Code = undefined
    this.#bytes = this.#packets = this.#srcMAC = this.#dstMAC = undefined
    this.#etype = this.#srcVlan = this.#dstVlan = this.#ipFragmentOffset = undefined
    this.#srcPort = this.#dstPort = this.#tcpFlags = undefined
    this.#srcAddr = this.#dstAddr = this.#nextHop = undefined
    return this
  }

  get batch(): FlowBatch {
    return this.#batch!
  }

  get timeReceived(): Uint32Array {
    return (this.#timeReceived ??= this.#batch!.u32('TimeReceived'))
  }
  get exporterAddress(): Uint8Array {
    return (this.#exporterAddress ??= this.#batch!.ip('ExporterAddress'))
  }
  get samplingRate(): Uint32Array {
    return (this.#samplingRate ??= this.#batch!.u32('SamplingRate'))
  }
  get inIf(): Uint32Array {
    return (this.#inIf ??= this.#batch!.u32('InIf'))
  }
  get outIf(): Uint32Array {
    return (this.#outIf ??= this.#batch!.u32('OutIf'))
  }
  get forwardingStatus(): Uint8Array {
    return (this.#forwardingStatus ??= this.#batch!.u8('ForwardingStatus'))
  }
  get bytes(): Float64Array {
    return (this.#bytes ??= this.#batch!.u64('Bytes'))
  }
  get packets(): Float64Array {
    return (this.#packets ??= this.#batch!.u64('Packets'))
  }
  get etype(): Uint16Array {
    return (this.#etype ??= this.#batch!.u16('EType'))
  }
  get srcMAC(): Float64Array {
    return (this.#srcMAC ??= this.#batch!.mac('SrcMAC'))
  }
  get dstMAC(): Float64Array {
    return (this.#dstMAC ??= this.#batch!.mac('DstMAC'))
  }
  get srcVlan(): Uint16Array {
    return (this.#srcVlan ??= this.#batch!.u16('SrcVlan'))
  }
  get dstVlan(): Uint16Array {
    return (this.#dstVlan ??= this.#batch!.u16('DstVlan'))
  }
  /** 16 bytes per row. */
  get srcAddr(): Uint8Array {
    return (this.#srcAddr ??= this.#batch!.ip('SrcAddr'))
  }
  get dstAddr(): Uint8Array {
    return (this.#dstAddr ??= this.#batch!.ip('DstAddr'))
  }
  get nextHop(): Uint8Array {
    return (this.#nextHop ??= this.#batch!.ip('NextHop'))
  }
  get srcNetMask(): Uint8Array {
    return (this.#srcNetMask ??= this.#batch!.u8('SrcNetMask'))
  }
  get dstNetMask(): Uint8Array {
    return (this.#dstNetMask ??= this.#batch!.u8('DstNetMask'))
  }
  get srcAS(): Uint32Array {
    return (this.#srcAS ??= this.#batch!.u32('SrcAS'))
  }
  get dstAS(): Uint32Array {
    return (this.#dstAS ??= this.#batch!.u32('DstAS'))
  }
  get proto(): Uint8Array {
    return (this.#proto ??= this.#batch!.u8('Proto'))
  }
  get ipTTL(): Uint8Array {
    return (this.#ipTTL ??= this.#batch!.u8('IPTTL'))
  }
  get ipTos(): Uint8Array {
    return (this.#ipTos ??= this.#batch!.u8('IPTos'))
  }
  get ipFragmentID(): Uint32Array {
    return (this.#ipFragmentID ??= this.#batch!.u32('IPFragmentID'))
  }
  get ipFragmentOffset(): Uint16Array {
    return (this.#ipFragmentOffset ??= this.#batch!.u16('IPFragmentOffset'))
  }
  get ipv6FlowLabel(): Uint32Array {
    return (this.#ipv6FlowLabel ??= this.#batch!.u32('IPv6FlowLabel'))
  }
  get srcPort(): Uint16Array {
    return (this.#srcPort ??= this.#batch!.u16('SrcPort'))
  }
  get dstPort(): Uint16Array {
    return (this.#dstPort ??= this.#batch!.u16('DstPort'))
  }
  get tcpFlags(): Uint16Array {
    return (this.#tcpFlags ??= this.#batch!.u16('TCPFlags'))
  }
  get icmpv4Type(): Uint8Array {
    return (this.#icmpv4Type ??= this.#batch!.u8('ICMPv4Type'))
  }
  get icmpv4Code(): Uint8Array {
    return (this.#icmpv4Code ??= this.#batch!.u8('ICMPv4Code'))
  }
  get icmpv6Type(): Uint8Array {
    return (this.#icmpv6Type ??= this.#batch!.u8('ICMPv6Type'))
  }
  get icmpv6Code(): Uint8Array {
    return (this.#icmpv6Code ??= this.#batch!.u8('ICMPv6Code'))
  }
}
