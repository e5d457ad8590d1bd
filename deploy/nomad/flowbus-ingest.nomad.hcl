# Intake: receivers on the routers' UDP ports (static ports: one per client node) and decoders sharing the raw stream.
# nomad job run -var image=registry.example/flowbus:0.1.0 deploy/nomad/flowbus-ingest.nomad.hcl   (from the repository root)
# Sizing and scaling: docs/deployment.md.

variable "image" {
  type        = string
  default     = "flowbus:latest"
  description = "the flowbus image (deploy/Dockerfile)"
}

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "config_file" {
  type        = string
  default     = "deploy/examples/cluster.yaml"
  description = "the flowbus configuration rendered into each task (path from where `nomad job run` runs)"
}

variable "nats_servers" {
  type    = string
  default = "[nats://nats.service.consul:4222]"
}

variable "clickhouse_url" {
  type    = string
  default = "http://clickhouse.service.consul:8123"
}

variable "receivers" {
  type    = number
  default = 1
}

variable "decoders" {
  type    = number
  default = 2
}

job "flowbus-ingest" {
  datacenters = var.datacenters
  type        = "service"

  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  # One receiver per node that routers send to; put a UDP load balancer or anycast in front of several.
  group "receiver" {
    count = var.receivers

    network {
      port "http" {
        to = 8080
      }
      port "netflow" {
        static = 2055
        to     = 2055
      }
      port "ipfix" {
        static = 4739
        to     = 4739
      }
      port "sflow" {
        static = 6343
        to     = 6343
      }
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "flowbus-receiver"
      port     = "http"
      provider = "nomad"
      tags     = ["flowbus", "metrics"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "30s"
        timeout  = "2s"
      }
    }

    task "receiver" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "receiver", "--config", "/local/config.yaml"]
        ports = ["http", "netflow", "ipfix", "sflow"]
      }

      env {
        FLOWBUS_HTTP__LISTEN       = "0.0.0.0:8080"
        FLOWBUS_BUS__NATS__SERVERS = var.nats_servers
        FLOWBUS_CLICKHOUSE__URL    = var.clickhouse_url
      }

      # The shared configuration file; every actor reads its own section of it.
      template {
        data        = file(var.config_file)
        destination = "local/config.yaml"
        change_mode = "restart"
      }

      # The ClickHouse password from Nomad Variables: nomad var put nomad/jobs clickhouse_password=…
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs" }}FLOWBUS_CLICKHOUSE__PASSWORD={{ .clickhouse_password }}{{ end }}
        EOT
        destination = "secrets/clickhouse.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 1000
        memory = 512
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }

  # Decoders share flows.raw by exporter shard; at most bus.partitions of them do work.
  group "decoder" {
    count = var.decoders

    network {
      port "http" {
        to = 8080
      }
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "flowbus-decoder"
      port     = "http"
      provider = "nomad"
      tags     = ["flowbus", "metrics"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "30s"
        timeout  = "2s"
      }
    }

    task "decoder" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "decoder", "--config", "/local/config.yaml"]
        ports = ["http"]
      }

      env {
        FLOWBUS_HTTP__LISTEN       = "0.0.0.0:8080"
        FLOWBUS_BUS__NATS__SERVERS = var.nats_servers
        FLOWBUS_CLICKHOUSE__URL    = var.clickhouse_url
      }

      # The shared configuration file; every actor reads its own section of it.
      template {
        data        = file(var.config_file)
        destination = "local/config.yaml"
        change_mode = "restart"
      }

      # The ClickHouse password from Nomad Variables: nomad var put nomad/jobs clickhouse_password=…
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs" }}FLOWBUS_CLICKHOUSE__PASSWORD={{ .clickhouse_password }}{{ end }}
        EOT
        destination = "secrets/clickhouse.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 1000
        memory = 512
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }
}
