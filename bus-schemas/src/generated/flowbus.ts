// GENERATED from bus-schemas/proto/flowbus/v1/*.proto by bus-schemas/scripts/generate.mjs: do not edit.
// The protobuf descriptor (for protobufjs reflection codecs) and the TypeScript types of the messages.

import type { INamespace } from 'protobufjs'

/** Descriptor of package flowbus.v1 (common.proto, counters.proto, flow_batch.proto, metadata.proto, raw_packets.proto, routing.proto, templates.proto, writer.proto), protobufjs JSON form. */
export const flowbusDescriptor: INamespace = {
  "nested": {
    "flowbus": {
      "nested": {
        "v1": {
          "nested": {
            "FlowProtocol": {
              "values": {
                "FLOW_PROTOCOL_UNKNOWN": 0,
                "FLOW_PROTOCOL_NETFLOW_V5": 1,
                "FLOW_PROTOCOL_NETFLOW_V9": 2,
                "FLOW_PROTOCOL_IPFIX": 3,
                "FLOW_PROTOCOL_SFLOW_V5": 4
              }
            },
            "InterfaceBoundary": {
              "values": {
                "INTERFACE_BOUNDARY_UNDEFINED": 0,
                "INTERFACE_BOUNDARY_EXTERNAL": 1,
                "INTERFACE_BOUNDARY_INTERNAL": 2
              }
            },
            "InterfaceCounters": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "agentAddress": {
                  "type": "bytes",
                  "id": 2
                },
                "subAgentId": {
                  "type": "uint32",
                  "id": 3
                },
                "timeReceived": {
                  "type": "uint32",
                  "id": 4
                },
                "sequenceNumber": {
                  "type": "uint32",
                  "id": 5
                },
                "ifIndex": {
                  "type": "uint32",
                  "id": 6
                },
                "ifType": {
                  "type": "uint32",
                  "id": 7
                },
                "ifSpeed": {
                  "type": "uint64",
                  "id": 8
                },
                "ifDirection": {
                  "type": "uint32",
                  "id": 9
                },
                "ifStatus": {
                  "type": "uint32",
                  "id": 10
                },
                "inOctets": {
                  "type": "uint64",
                  "id": 11
                },
                "inUnicastPackets": {
                  "type": "uint32",
                  "id": 12
                },
                "inMulticastPackets": {
                  "type": "uint32",
                  "id": 13
                },
                "inBroadcastPackets": {
                  "type": "uint32",
                  "id": 14
                },
                "inDiscards": {
                  "type": "uint32",
                  "id": 15
                },
                "inErrors": {
                  "type": "uint32",
                  "id": 16
                },
                "inUnknownProtocols": {
                  "type": "uint32",
                  "id": 17
                },
                "outOctets": {
                  "type": "uint64",
                  "id": 18
                },
                "outUnicastPackets": {
                  "type": "uint32",
                  "id": 19
                },
                "outMulticastPackets": {
                  "type": "uint32",
                  "id": 20
                },
                "outBroadcastPackets": {
                  "type": "uint32",
                  "id": 21
                },
                "outDiscards": {
                  "type": "uint32",
                  "id": 22
                },
                "outErrors": {
                  "type": "uint32",
                  "id": 23
                },
                "promiscuousMode": {
                  "type": "uint32",
                  "id": 24
                }
              }
            },
            "InterfaceCountersBatch": {
              "fields": {
                "counters": {
                  "rule": "repeated",
                  "type": "InterfaceCounters",
                  "id": 1
                }
              }
            },
            "FlowBatch": {
              "fields": {
                "count": {
                  "type": "uint32",
                  "id": 1
                },
                "strings": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 2
                },
                "TimeReceived": {
                  "type": "bytes",
                  "id": 16
                },
                "SamplingRate": {
                  "type": "bytes",
                  "id": 17
                },
                "ExporterAddress": {
                  "type": "bytes",
                  "id": 18
                },
                "ExporterName": {
                  "type": "bytes",
                  "id": 19
                },
                "ExporterGroup": {
                  "type": "bytes",
                  "id": 20
                },
                "ExporterRole": {
                  "type": "bytes",
                  "id": 21
                },
                "ExporterSite": {
                  "type": "bytes",
                  "id": 22
                },
                "ExporterRegion": {
                  "type": "bytes",
                  "id": 23
                },
                "ExporterTenant": {
                  "type": "bytes",
                  "id": 24
                },
                "SrcAddr": {
                  "type": "bytes",
                  "id": 25
                },
                "DstAddr": {
                  "type": "bytes",
                  "id": 26
                },
                "SrcNetMask": {
                  "type": "bytes",
                  "id": 27
                },
                "DstNetMask": {
                  "type": "bytes",
                  "id": 28
                },
                "NextHop": {
                  "type": "bytes",
                  "id": 29
                },
                "SrcAS": {
                  "type": "bytes",
                  "id": 30
                },
                "DstAS": {
                  "type": "bytes",
                  "id": 31
                },
                "SrcNetName": {
                  "type": "bytes",
                  "id": 32
                },
                "DstNetName": {
                  "type": "bytes",
                  "id": 33
                },
                "SrcNetRole": {
                  "type": "bytes",
                  "id": 34
                },
                "DstNetRole": {
                  "type": "bytes",
                  "id": 35
                },
                "SrcNetSite": {
                  "type": "bytes",
                  "id": 36
                },
                "DstNetSite": {
                  "type": "bytes",
                  "id": 37
                },
                "SrcNetRegion": {
                  "type": "bytes",
                  "id": 38
                },
                "DstNetRegion": {
                  "type": "bytes",
                  "id": 39
                },
                "SrcNetTenant": {
                  "type": "bytes",
                  "id": 40
                },
                "DstNetTenant": {
                  "type": "bytes",
                  "id": 41
                },
                "SrcCountry": {
                  "type": "bytes",
                  "id": 42
                },
                "DstCountry": {
                  "type": "bytes",
                  "id": 43
                },
                "SrcGeoCity": {
                  "type": "bytes",
                  "id": 44
                },
                "DstGeoCity": {
                  "type": "bytes",
                  "id": 45
                },
                "SrcGeoState": {
                  "type": "bytes",
                  "id": 46
                },
                "DstGeoState": {
                  "type": "bytes",
                  "id": 47
                },
                "DstASPath": {
                  "type": "bytes",
                  "id": 48
                },
                "DstASPathCounts": {
                  "type": "bytes",
                  "id": 49
                },
                "DstCommunities": {
                  "type": "bytes",
                  "id": 50
                },
                "DstCommunitiesCounts": {
                  "type": "bytes",
                  "id": 51
                },
                "DstLargeCommunities": {
                  "type": "bytes",
                  "id": 52
                },
                "DstLargeCommunitiesCounts": {
                  "type": "bytes",
                  "id": 53
                },
                "InIf": {
                  "type": "bytes",
                  "id": 54
                },
                "OutIf": {
                  "type": "bytes",
                  "id": 55
                },
                "InIfName": {
                  "type": "bytes",
                  "id": 56
                },
                "OutIfName": {
                  "type": "bytes",
                  "id": 57
                },
                "InIfDescription": {
                  "type": "bytes",
                  "id": 58
                },
                "OutIfDescription": {
                  "type": "bytes",
                  "id": 59
                },
                "InIfSpeed": {
                  "type": "bytes",
                  "id": 60
                },
                "OutIfSpeed": {
                  "type": "bytes",
                  "id": 61
                },
                "InIfConnectivity": {
                  "type": "bytes",
                  "id": 62
                },
                "OutIfConnectivity": {
                  "type": "bytes",
                  "id": 63
                },
                "InIfProvider": {
                  "type": "bytes",
                  "id": 64
                },
                "OutIfProvider": {
                  "type": "bytes",
                  "id": 65
                },
                "InIfBoundary": {
                  "type": "bytes",
                  "id": 66
                },
                "OutIfBoundary": {
                  "type": "bytes",
                  "id": 67
                },
                "EType": {
                  "type": "bytes",
                  "id": 68
                },
                "Proto": {
                  "type": "bytes",
                  "id": 69
                },
                "SrcPort": {
                  "type": "bytes",
                  "id": 70
                },
                "DstPort": {
                  "type": "bytes",
                  "id": 71
                },
                "Bytes": {
                  "type": "bytes",
                  "id": 72
                },
                "Packets": {
                  "type": "bytes",
                  "id": 73
                },
                "ForwardingStatus": {
                  "type": "bytes",
                  "id": 74
                },
                "FlowDirection": {
                  "type": "bytes",
                  "id": 75
                },
                "SrcVlan": {
                  "type": "bytes",
                  "id": 76
                },
                "DstVlan": {
                  "type": "bytes",
                  "id": 77
                },
                "SrcMAC": {
                  "type": "bytes",
                  "id": 78
                },
                "DstMAC": {
                  "type": "bytes",
                  "id": 79
                },
                "IPTTL": {
                  "type": "bytes",
                  "id": 80
                },
                "IPTos": {
                  "type": "bytes",
                  "id": 81
                },
                "IPFragmentID": {
                  "type": "bytes",
                  "id": 82
                },
                "IPFragmentOffset": {
                  "type": "bytes",
                  "id": 83
                },
                "IPv6FlowLabel": {
                  "type": "bytes",
                  "id": 84
                },
                "TCPFlags": {
                  "type": "bytes",
                  "id": 85
                },
                "ICMPv4Type": {
                  "type": "bytes",
                  "id": 86
                },
                "ICMPv4Code": {
                  "type": "bytes",
                  "id": 87
                },
                "ICMPv6Type": {
                  "type": "bytes",
                  "id": 88
                },
                "ICMPv6Code": {
                  "type": "bytes",
                  "id": 89
                },
                "MPLSLabels": {
                  "type": "bytes",
                  "id": 90
                },
                "MPLSLabelsCounts": {
                  "type": "bytes",
                  "id": 91
                },
                "SrcAddrNAT": {
                  "type": "bytes",
                  "id": 92
                },
                "DstAddrNAT": {
                  "type": "bytes",
                  "id": 93
                },
                "SrcPortNAT": {
                  "type": "bytes",
                  "id": 94
                },
                "DstPortNAT": {
                  "type": "bytes",
                  "id": 95
                },
                "InVrf": {
                  "type": "bytes",
                  "id": 102
                },
                "OutVrf": {
                  "type": "bytes",
                  "id": 103
                },
                "InVrfName": {
                  "type": "bytes",
                  "id": 104
                },
                "OutVrfName": {
                  "type": "bytes",
                  "id": 105
                },
                "FlowStartTime": {
                  "type": "bytes",
                  "id": 106
                },
                "FlowEndTime": {
                  "type": "bytes",
                  "id": 107
                },
                "ExporterAddressIPv4Flows": {
                  "type": "bytes",
                  "id": 96
                },
                "SrcAddrIPv4Flows": {
                  "type": "bytes",
                  "id": 97
                },
                "DstAddrIPv4Flows": {
                  "type": "bytes",
                  "id": 98
                },
                "NextHopIPv4Flows": {
                  "type": "bytes",
                  "id": 99
                },
                "SrcAddrNATIPv4Flows": {
                  "type": "bytes",
                  "id": 100
                },
                "DstAddrNATIPv4Flows": {
                  "type": "bytes",
                  "id": 101
                }
              }
            },
            "ExporterInfo": {
              "fields": {
                "address": {
                  "type": "bytes",
                  "id": 1
                },
                "name": {
                  "type": "string",
                  "id": 2
                },
                "group": {
                  "type": "string",
                  "id": 3
                },
                "role": {
                  "type": "string",
                  "id": 4
                },
                "site": {
                  "type": "string",
                  "id": 5
                },
                "region": {
                  "type": "string",
                  "id": 6
                },
                "tenant": {
                  "type": "string",
                  "id": 7
                },
                "sysName": {
                  "type": "string",
                  "id": 8
                },
                "updatedUnixMs": {
                  "type": "uint64",
                  "id": 9
                }
              }
            },
            "InterfaceInfo": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "ifIndex": {
                  "type": "uint32",
                  "id": 2
                },
                "name": {
                  "type": "string",
                  "id": 3
                },
                "description": {
                  "type": "string",
                  "id": 4
                },
                "speed": {
                  "type": "uint32",
                  "id": 5
                },
                "provider": {
                  "type": "string",
                  "id": 6
                },
                "connectivity": {
                  "type": "string",
                  "id": 7
                },
                "boundary": {
                  "type": "InterfaceBoundary",
                  "id": 8
                },
                "updatedUnixMs": {
                  "type": "uint64",
                  "id": 9
                }
              }
            },
            "MetadataRequest": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "ifIndexes": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 2
                }
              }
            },
            "MetadataRequestBatch": {
              "fields": {
                "requests": {
                  "rule": "repeated",
                  "type": "MetadataRequest",
                  "id": 1
                }
              }
            },
            "RawPacket": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "exporterPort": {
                  "type": "uint32",
                  "id": 2
                },
                "receivedNs": {
                  "type": "fixed64",
                  "id": 3
                },
                "protocol": {
                  "type": "FlowProtocol",
                  "id": 4
                },
                "payload": {
                  "type": "bytes",
                  "id": 5
                }
              }
            },
            "RawPacketBatch": {
              "fields": {
                "receiver": {
                  "type": "string",
                  "id": 1
                },
                "packets": {
                  "rule": "repeated",
                  "type": "RawPacket",
                  "id": 2
                }
              }
            },
            "RoutingLookupRequest": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "addresses": {
                  "type": "bytes",
                  "id": 2
                },
                "nextHops": {
                  "type": "bytes",
                  "id": 3
                },
                "sharedRoutes": {
                  "type": "bool",
                  "id": 4
                }
              }
            },
            "RouteInfo": {
              "fields": {
                "found": {
                  "type": "bool",
                  "id": 1
                },
                "asn": {
                  "type": "uint32",
                  "id": 2
                },
                "asPath": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 3
                },
                "communities": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 4
                },
                "largeCommunities": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 5
                },
                "prefixLength": {
                  "type": "uint32",
                  "id": 6
                },
                "nextHop": {
                  "type": "bytes",
                  "id": 7
                }
              }
            },
            "RoutingLookupResponse": {
              "fields": {
                "routes": {
                  "rule": "repeated",
                  "type": "RouteInfo",
                  "id": 1
                },
                "distinctRoutes": {
                  "rule": "repeated",
                  "type": "RouteInfo",
                  "id": 2
                },
                "routeIndex": {
                  "rule": "repeated",
                  "type": "uint32",
                  "id": 3
                }
              }
            },
            "TemplateField": {
              "fields": {
                "enterpriseNumber": {
                  "type": "uint32",
                  "id": 1
                },
                "type": {
                  "type": "uint32",
                  "id": 2
                },
                "length": {
                  "type": "uint32",
                  "id": 3
                }
              }
            },
            "TemplateRecord": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "exporterPort": {
                  "type": "uint32",
                  "id": 2
                },
                "protocol": {
                  "type": "FlowProtocol",
                  "id": 3
                },
                "observationDomainId": {
                  "type": "uint32",
                  "id": 4
                },
                "templateId": {
                  "type": "uint32",
                  "id": 5
                },
                "options": {
                  "type": "bool",
                  "id": 6
                },
                "scopeFieldCount": {
                  "type": "uint32",
                  "id": 7
                },
                "fields": {
                  "rule": "repeated",
                  "type": "TemplateField",
                  "id": 8
                },
                "lastSeenUnixMs": {
                  "type": "uint64",
                  "id": 9
                }
              }
            },
            "OptionsSampler": {
              "fields": {
                "id": {
                  "type": "uint64",
                  "id": 1
                },
                "rate": {
                  "type": "uint32",
                  "id": 2
                }
              }
            },
            "OptionsInterface": {
              "fields": {
                "ifIndex": {
                  "type": "uint32",
                  "id": 1
                },
                "name": {
                  "type": "string",
                  "id": 2
                },
                "description": {
                  "type": "string",
                  "id": 3
                }
              }
            },
            "OptionsVrf": {
              "fields": {
                "vrfId": {
                  "type": "uint32",
                  "id": 1
                },
                "name": {
                  "type": "string",
                  "id": 2
                }
              }
            },
            "ExporterOptionsRecord": {
              "fields": {
                "exporterAddress": {
                  "type": "bytes",
                  "id": 1
                },
                "exporterPort": {
                  "type": "uint32",
                  "id": 2
                },
                "protocol": {
                  "type": "FlowProtocol",
                  "id": 3
                },
                "observationDomainId": {
                  "type": "uint32",
                  "id": 4
                },
                "samplingRate": {
                  "type": "uint32",
                  "id": 5
                },
                "samplers": {
                  "rule": "repeated",
                  "type": "OptionsSampler",
                  "id": 6
                },
                "interfaces": {
                  "rule": "repeated",
                  "type": "OptionsInterface",
                  "id": 7
                },
                "vrfs": {
                  "rule": "repeated",
                  "type": "OptionsVrf",
                  "id": 8
                },
                "systemInitUnixMs": {
                  "type": "uint64",
                  "id": 9
                },
                "updatedUnixMs": {
                  "type": "uint64",
                  "id": 10
                }
              }
            },
            "WriterBatchRecord": {
              "fields": {
                "stream": {
                  "type": "string",
                  "id": 1
                },
                "shard": {
                  "type": "uint32",
                  "id": 2
                },
                "firstPosition": {
                  "type": "uint64",
                  "id": 3
                },
                "lastPosition": {
                  "type": "uint64",
                  "id": 4
                },
                "messages": {
                  "type": "uint32",
                  "id": 5
                },
                "token": {
                  "type": "string",
                  "id": 6
                },
                "committed": {
                  "type": "bool",
                  "id": 7
                },
                "recordedUnixMs": {
                  "type": "uint64",
                  "id": 8
                },
                "positions": {
                  "rule": "repeated",
                  "type": "uint64",
                  "id": 9
                }
              }
            }
          }
        }
      }
    }
  }
}

/** One exporter (router, switch) as the enricher shows it in Exporter* columns. */
export interface ExporterInfo {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  address: Uint8Array
  /** Display name (ExporterName): sysName unless configured otherwise. */
  name: string
  group: string
  role: string
  site: string
  region: string
  tenant: string
  /** SNMP sysName as polled, empty when not polled. */
  sysName: string
  /** When this information was obtained, milliseconds since the Unix epoch. */
  updatedUnixMs: number
}

/** What an exporter's options data taught about one transport session and observation domain,
 * shared so a restarted or other decoder joins sampling rates and names onto flows at once,
 * without waiting for the exporter to resend its options data. */
export interface ExporterOptionsRecord {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** Exporter UDP source port: options data is scoped by transport session, like templates. */
  exporterPort: number
  /** NETFLOW_V9 or IPFIX. */
  protocol: FlowProtocol
  /** NetFlow v9 source id / IPFIX observation domain id. */
  observationDomainId: number
  /** Sampling rate of the whole domain, for flows that name no sampler (0: unknown). */
  samplingRate: number
  samplers: OptionsSampler[]
  interfaces: OptionsInterface[]
  vrfs: OptionsVrf[]
  /** IPFIX systemInitTimeMilliseconds, milliseconds since the Unix epoch (0: unknown). */
  systemInitUnixMs: number
  /** When a decoder last stored a change, milliseconds since the Unix epoch. */
  updatedUnixMs: number
}

/** Flow export protocol of a datagram or template. */
export const FlowProtocol = {
  UNKNOWN: 0,
  NETFLOW_V5: 1,
  NETFLOW_V9: 2,
  IPFIX: 3,
  SFLOW_V5: 4,
} as const
export type FlowProtocol = (typeof FlowProtocol)[keyof typeof FlowProtocol]

/** Whether an interface faces outside or inside the network (the InIfBoundary/OutIfBoundary values). */
export const InterfaceBoundary = {
  UNDEFINED: 0,
  EXTERNAL: 1,
  INTERNAL: 2,
} as const
export type InterfaceBoundary = (typeof InterfaceBoundary)[keyof typeof InterfaceBoundary]

/** Generic interface counters (sFlow counters_sample, record type 1) of one interface at one time. */
export interface InterfaceCounters {
  /** Exporter address the datagram came from, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** sFlow agent address inside the datagram, 16 bytes. */
  agentAddress: Uint8Array
  subAgentId: number
  /** When the collector received the datagram, seconds since the Unix epoch. */
  timeReceived: number
  /** Counter sample sequence number (per source). */
  sequenceNumber: number
  ifIndex: number
  ifType: number
  /** Interface speed, bits per second. */
  ifSpeed: number
  /** 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out. */
  ifDirection: number
  /** Bit 0 admin up, bit 1 operational up. */
  ifStatus: number
  inOctets: number
  inUnicastPackets: number
  inMulticastPackets: number
  inBroadcastPackets: number
  inDiscards: number
  inErrors: number
  inUnknownProtocols: number
  outOctets: number
  outUnicastPackets: number
  outMulticastPackets: number
  outBroadcastPackets: number
  outDiscards: number
  outErrors: number
  promiscuousMode: number
}

/** Counter samples decoded from one or more datagrams. */
export interface InterfaceCountersBatch {
  counters: InterfaceCounters[]
}

/** One interface of an exporter, as the enricher shows it in the InIf and OutIf columns. */
export interface InterfaceInfo {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** SNMP ifIndex. */
  ifIndex: number
  /** ifName. */
  name: string
  /** ifAlias. */
  description: string
  /** Speed in Mbps (ifHighSpeed). */
  speed: number
  /** Provider behind the interface, from classification. */
  provider: string
  /** Connectivity (transit, ix, pni…), from classification. */
  connectivity: string
  boundary: InterfaceBoundary
  /** When this information was obtained, milliseconds since the Unix epoch. */
  updatedUnixMs: number
}

/** "These interfaces were seen in flows": what enricher shards ask the snmp-poller to learn.
 * Sent on a non-durable broadcast; the poller coalesces requests per exporter and answers by
 * writing metadata.exporters and metadata.interfaces, which every shard watches. */
export interface MetadataRequest {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** ifIndexes seen in flows from this exporter, without metadata yet (or stale). */
  ifIndexes: number[]
}

/** Several exporters' requests in one message, so a shard sends one message per batch at most. */
export interface MetadataRequestBatch {
  requests: MetadataRequest[]
}

/** Names options data gave for one interface (IPFIX interfaceName 82 / interfaceDescription 83). */
export interface OptionsInterface {
  ifIndex: number
  name: string
  description: string
}

/** A sampling rate options data gave for one sampler (v9 FLOW_SAMPLER_ID, IPFIX selectorId). */
export interface OptionsSampler {
  id: number
  /** Packets sampled 1 in `rate`. */
  rate: number
}

/** The name options data gave for one VRF (IPFIX VRFname 236). */
export interface OptionsVrf {
  vrfId: number
  name: string
}

/** The route covering one looked-up address. */
export interface RouteInfo {
  /** False when no route covers the address (other fields are then empty). */
  found: boolean
  /** Origin AS of the route. */
  asn: number
  /** AS path, nearest AS first. */
  asPath: number[]
  /** Standard communities (ASN << 16 | value). */
  communities: number[]
  /** Large communities, (ASN, local1, local2) triples flattened. */
  largeCommunities: number[]
  /** Length of the matched prefix: 0-32 for IPv4 addresses, 0-128 for IPv6. */
  prefixLength: number
  /** BGP next hop of the route, 16 bytes, empty when unknown. */
  nextHop: Uint8Array
}

/** Route lookups for addresses seen by one exporter. */
export interface RoutingLookupRequest {
  /** Exporter whose view of the RIB to use, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** Addresses to look up, 16 bytes each, concatenated. */
  addresses: Uint8Array
  /** Empty, or the next hop the exporter used for each address, 16 bytes each: picks among paths. */
  nextHops: Uint8Array
  /** The requester reads the response's distinct_routes and route_index (each route sent once,
   * however many addresses it covers) instead of one route per address. */
  sharedRoutes: boolean
}

/** The routes covering the request's addresses. */
export interface RoutingLookupResponse {
  /** Without shared_routes in the request: one route per address, in the request's order. */
  routes: RouteInfo[]
  /** With shared_routes: each distinct route once (a batch's addresses fall in far fewer routes)… */
  distinctRoutes: RouteInfo[]
  /** …and per address, in the request's order, 1 + the index of its route in distinct_routes, or 0
   * when no route covers it. */
  routeIndex: number[]
}

/** One field of a template, in record order. */
export interface TemplateField {
  /** IPFIX private enterprise number, 0 for IANA fields (and always for NetFlow v9). */
  enterpriseNumber: number
  /** Information element / NetFlow v9 field type. */
  type: number
  /** Length in bytes; 65535 means variable length (IPFIX). */
  length: number
}

/** One template as last announced by an exporter. */
export interface TemplateRecord {
  /** Exporter address, 16 bytes (IPv4 as IPv4-mapped IPv6). */
  exporterAddress: Uint8Array
  /** Exporter UDP source port: templates are scoped by transport session. */
  exporterPort: number
  /** NETFLOW_V9 or IPFIX: their template ids are separate spaces. */
  protocol: FlowProtocol
  /** NetFlow v9 source id / IPFIX observation domain id. */
  observationDomainId: number
  /** Template id (256-65535). */
  templateId: number
  /** True for an options template. */
  options: boolean
  /** Options templates: how many of the leading fields are scope fields. */
  scopeFieldCount: number
  fields: TemplateField[]
  /** When the exporter last sent this template, milliseconds since the Unix epoch. */
  lastSeenUnixMs: number
}

/** One insert: consecutive messages of one shard of a stream, identified by their bus positions. */
export interface WriterBatchRecord {
  /** Versioned stream base name the messages came from, e.g. flows.enriched.v1. */
  stream: string
  shard: number
  /** Bus positions (JetStream stream sequence, Kafka offset, memory log index) of the first and
   * last message of the batch. */
  firstPosition: number
  lastPosition: number
  /** Messages in the batch (a JetStream shard's positions may skip numbers). */
  messages: number
  /** The insert's deduplication token. */
  token: string
  /** Set once ClickHouse committed the insert, before the messages are acknowledged. */
  committed: boolean
  /** When the record was written, milliseconds since the Unix epoch (old committed records are pruned). */
  recordedUnixMs: number
  /** Position of every message of the batch, in insert order: a redelivered message belongs to
   * the batch whose list holds its position (redeliveries may interleave batches' ranges). */
  positions: number[]
}
