# Amazon MSK for Helios: brokers in private subnets reachable only from the listed security
# groups on the SASL/SCRAM-over-TLS listener (9096; no plaintext, no unauthenticated access),
# TLS between brokers, encryption at rest with a customer-managed KMS key, broker logs in
# CloudWatch, and one SCRAM user for Helios whose credentials live in Secrets Manager
# (AmazonMSK_ prefix and a customer-managed key, as MSK requires).
#
# SCRAM rather than IAM: the Helios workers use librdkafka, whose SASL mechanisms are PLAIN and
# SCRAM-SHA-256/512 (the AnomalyPipeline spec.kafka.sasl.mechanism); MSK's SCRAM is SHA-512.

locals {
  scram_port = 9096

  server_properties = merge({
    "auto.create.topics.enable"      = "false" # the operator creates each pipeline's topics
    "default.replication.factor"     = tostring(min(3, var.broker_count))
    "min.insync.replicas"            = tostring(var.broker_count >= 3 ? 2 : 1)
    "num.partitions"                 = "3"
    "unclean.leader.election.enable" = "false"
    # With SCRAM, MSK authorises with Kafka ACLs. With one user (Helios) authentication is the
    # boundary; on a shared cluster set this to false and grant ACLs to each user.
    "allow.everyone.if.no.acl.found" = "true"
  }, var.server_properties)
}

# ---- encryption -------------------------------------------------------------------------------

resource "aws_kms_key" "msk" {
  description             = "MSK ${var.name}: data at rest and the SCRAM secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = var.tags
}

resource "aws_kms_alias" "msk" {
  name          = "alias/msk/${var.name}"
  target_key_id = aws_kms_key.msk.key_id
}

# ---- network ----------------------------------------------------------------------------------

resource "aws_security_group" "brokers" {
  name        = "${var.name}-msk-brokers"
  description = "MSK ${var.name}: SASL/SCRAM TLS listener for the listed client security groups only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-msk-brokers" })
}

resource "aws_vpc_security_group_ingress_rule" "scram" {
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.brokers.id
  description                  = "Kafka SASL/SCRAM over TLS"
  ip_protocol                  = "tcp"
  from_port                    = local.scram_port
  to_port                      = local.scram_port
  referenced_security_group_id = var.client_security_group_ids[count.index]
  tags                         = var.tags
}

# ---- brokers ----------------------------------------------------------------------------------

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-helios"
  kafka_versions = [var.kafka_version]
  server_properties = join("\n", [
    for key, value in local.server_properties : "${key}=${value}"
  ])
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/aws/msk/${var.name}/brokers"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = var.enhanced_monitoring

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.brokers.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_size_gb
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false

    sasl {
      scram = true
      iam   = false
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.msk.arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.broker_count % length(var.subnet_ids) == 0
      error_message = "broker_count must be a multiple of the number of subnets."
    }
  }
}

# ---- the Helios SCRAM user --------------------------------------------------------------------

resource "random_password" "scram" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "scram" {
  name        = "AmazonMSK_${var.name}_${var.scram_username}"
  description = "SASL/SCRAM credentials of the Helios user of MSK cluster ${var.name}"
  kms_key_id  = aws_kms_key.msk.arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "scram" {
  secret_id = aws_secretsmanager_secret.scram.id
  secret_string = jsonencode({
    username = var.scram_username
    password = random_password.scram.result
  })
}

# The policy MSK itself attaches on association, managed here so it does not show as drift:
# only the Kafka service may read this one secret.
data "aws_iam_policy_document" "scram" {
  statement {
    sid       = "AWSKafkaResourcePolicy"
    actions   = ["secretsmanager:getSecretValue"]
    resources = [aws_secretsmanager_secret.scram.arn]

    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "scram" {
  secret_arn = aws_secretsmanager_secret.scram.arn
  policy     = data.aws_iam_policy_document.scram.json
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [aws_secretsmanager_secret.scram.arn]

  depends_on = [aws_secretsmanager_secret_version.scram]
}
