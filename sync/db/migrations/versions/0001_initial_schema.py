"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 00:19:10.459926
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sync.db.types
from sqlalchemy.dialects import postgresql
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collection_flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=True),
    sa.Column('overdue_amount', sync.db.types.Money(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('entered_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', sync.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_flags'))
    )
    with op.batch_alter_table('collection_flags', schema=None) as batch_op:
        batch_op.create_index('ix_collection_flags_customer', ['customer_id', 'currency'], unique=False)

    op.create_table('customers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=True),
    sa.Column('relationship', sa.String(length=32), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('synced_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_domain'), ['domain'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=False),
    sa.Column('billing_period_start', sa.Date(), nullable=True),
    sa.Column('billing_period_end', sa.Date(), nullable=True),
    sa.Column('total_charges', sync.db.types.Money(), nullable=False),
    sa.Column('paid_amount', sync.db.types.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_type', sa.String(length=32), nullable=True),
    sa.Column('document_type', sa.String(length=32), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('synced_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_invoice_date'), ['invoice_date'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sync.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('throttled', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_kind'), ['kind'], unique=False)

    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('offer_id', sa.String(length=128), nullable=True),
    sa.Column('offer_name', sa.String(length=255), nullable=True),
    sa.Column('friendly_name', sa.String(length=255), nullable=True),
    sa.Column('product_type', sa.String(length=64), nullable=True),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('unit_type', sa.String(length=64), nullable=True),
    sa.Column('billing_type', sa.String(length=16), nullable=True),
    sa.Column('billing_cycle', sa.String(length=16), nullable=True),
    sa.Column('term_duration', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('suspension_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('auto_renew', sa.Boolean(), nullable=True),
    sa.Column('effective_start_date', sync.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('commitment_end_date', sync.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('etag', sa.String(length=255), nullable=True),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('synced_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_customer_id'), ['customer_id'], unique=False)

    op.create_table('unbilled_line_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('synced_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('subscription_id', sa.String(length=64), nullable=True),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('sku_id', sa.String(length=64), nullable=True),
    sa.Column('product_name', sa.String(length=255), nullable=True),
    sa.Column('charge_type', sa.String(length=64), nullable=True),
    sa.Column('unit_price', sync.db.types.Money(), nullable=True),
    sa.Column('quantity', sync.db.types.Money(), nullable=True),
    sa.Column('billable_quantity', sync.db.types.Money(), nullable=True),
    sa.Column('subtotal', sync.db.types.Money(), nullable=False),
    sa.Column('tax_total', sync.db.types.Money(), nullable=False),
    sa.Column('total_for_customer', sync.db.types.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('charge_start_date', sa.Date(), nullable=True),
    sa.Column('charge_end_date', sa.Date(), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unbilled_line_items')),
    sa.UniqueConstraint('period', 'currency', 'provider', 'content_hash', 'occurrence', name=op.f('uq_unbilled_line_items_period_currency_provider_content_hash_occurrence'))
    )
    op.create_table('approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('approved_by', sa.String(length=255), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('approved_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sync.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['flag_id'], ['collection_flags.id'], name=op.f('fk_approvals_flag_id_collection_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals'))
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_customer_id'), ['customer_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('subscription_id', sa.String(length=64), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_audit_log_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_customer_id'), ['customer_id'], unique=False)

    op.create_table('invoice_line_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('customer_name', sa.String(length=255), nullable=True),
    sa.Column('subscription_id', sa.String(length=64), nullable=True),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('sku_id', sa.String(length=64), nullable=True),
    sa.Column('product_name', sa.String(length=255), nullable=True),
    sa.Column('charge_type', sa.String(length=64), nullable=True),
    sa.Column('unit_price', sync.db.types.Money(), nullable=True),
    sa.Column('quantity', sync.db.types.Money(), nullable=True),
    sa.Column('billable_quantity', sync.db.types.Money(), nullable=True),
    sa.Column('subtotal', sync.db.types.Money(), nullable=False),
    sa.Column('tax_total', sync.db.types.Money(), nullable=False),
    sa.Column('total_for_customer', sync.db.types.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('charge_start_date', sa.Date(), nullable=True),
    sa.Column('charge_end_date', sa.Date(), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_invoice_line_items_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_line_items')),
    sa.UniqueConstraint('invoice_id', 'provider', 'content_hash', 'occurrence', name=op.f('uq_invoice_line_items_invoice_id_provider_content_hash_occurrence'))
    )
    with op.batch_alter_table('invoice_line_items', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_line_items_customer', ['customer_id', 'currency'], unique=False)

    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=255), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('sent_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['collection_flags.id'], name=op.f('fk_notices_flag_id_collection_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    sa.UniqueConstraint('customer_id', 'currency', 'stage', 'flag_id', name=op.f('uq_notices_customer_id_currency_stage_flag_id'))
    )
    op.create_table('payment_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=1024), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_imported', sa.Integer(), nullable=False),
    sa.Column('rows_unchanged', sa.Integer(), nullable=False),
    sa.Column('rows_rejected', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_payment_imports_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_imports'))
    )
    op.create_table('reconciliation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('created_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('input_digest', sa.String(length=64), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_reconciliation_runs_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs'))
    )
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_runs_as_of'), ['as_of'], unique=False)

    op.create_table('subscription_status_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('old_status', sa.String(length=16), nullable=True),
    sa.Column('new_status', sa.String(length=16), nullable=False),
    sa.Column('observed_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_subscription_status_history_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_status_history'))
    )
    with op.batch_alter_table('subscription_status_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_status_history_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('sync_checkpoints',
    sa.Column('resource', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_sync_checkpoints_run_id_runs')),
    sa.PrimaryKeyConstraint('resource', 'key', name=op.f('pk_sync_checkpoints'))
    )
    op.create_table('actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('approval_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('subscription_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('status_before', sa.String(length=16), nullable=True),
    sa.Column('status_after', sa.String(length=16), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('ms_request_id', sa.String(length=64), nullable=True),
    sa.Column('requested_by', sa.String(length=255), nullable=False),
    sa.Column('requested_at', sync.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], name=op.f('fk_actions_approval_id_approvals')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_actions_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actions'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_actions_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_actions_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('customer_balances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reconciliation_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('microsoft_cost', sync.db.types.Money(), nullable=False),
    sa.Column('charged', sync.db.types.Money(), nullable=False),
    sa.Column('paid', sync.db.types.Money(), nullable=False),
    sa.Column('balance', sync.db.types.Money(), nullable=False),
    sa.Column('overdue_amount', sync.db.types.Money(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('aging_current', sync.db.types.Money(), nullable=False),
    sa.Column('aging_1_30', sync.db.types.Money(), nullable=False),
    sa.Column('aging_31_60', sync.db.types.Money(), nullable=False),
    sa.Column('aging_61_90', sync.db.types.Money(), nullable=False),
    sa.Column('aging_over_90', sync.db.types.Money(), nullable=False),
    sa.Column('owed_to_microsoft', sync.db.types.Money(), nullable=False),
    sa.ForeignKeyConstraint(['reconciliation_id'], ['reconciliation_runs.id'], name=op.f('fk_customer_balances_reconciliation_id_reconciliation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_balances')),
    sa.UniqueConstraint('reconciliation_id', 'customer_id', 'currency', name=op.f('uq_customer_balances_reconciliation_id_customer_id_currency'))
    )
    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('payment_date', sa.Date(), nullable=False),
    sa.Column('amount', sync.db.types.Money(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['payment_imports.id'], name=op.f('fk_payments_import_id_payment_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('reference', name=op.f('uq_payments_reference'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_customer_id'), ['customer_id'], unique=False)

    op.create_table('reconciliation_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reconciliation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('subscription_id', sa.String(length=64), nullable=True),
    sa.Column('invoice_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sync.db.types.Money(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['reconciliation_id'], ['reconciliation_runs.id'], name=op.f('fk_reconciliation_findings_reconciliation_id_reconciliation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_findings'))
    )
    with op.batch_alter_table('reconciliation_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_findings_reconciliation_id'), ['reconciliation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reconciliation_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_findings_reconciliation_id'))

    op.drop_table('reconciliation_findings')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_customer_id'))

    op.drop_table('payments')
    op.drop_table('customer_balances')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_actions_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_actions_customer_id'))

    op.drop_table('actions')
    op.drop_table('sync_checkpoints')
    with op.batch_alter_table('subscription_status_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_status_history_subscription_id'))

    op.drop_table('subscription_status_history')
    with op.batch_alter_table('reconciliation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_runs_as_of'))

    op.drop_table('reconciliation_runs')
    op.drop_table('payment_imports')
    op.drop_table('notices')
    with op.batch_alter_table('invoice_line_items', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_line_items_customer')

    op.drop_table('invoice_line_items')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_customer_id'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_customer_id'))

    op.drop_table('approvals')
    op.drop_table('unbilled_line_items')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_customer_id'))

    op.drop_table('subscriptions')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_kind'))

    op.drop_table('runs')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_invoice_date'))

    op.drop_table('invoices')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_domain'))

    op.drop_table('customers')
    with op.batch_alter_table('collection_flags', schema=None) as batch_op:
        batch_op.drop_index('ix_collection_flags_customer')

    op.drop_table('collection_flags')
